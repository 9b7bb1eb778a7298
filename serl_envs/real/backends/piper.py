"""AgileX Piper behind the robot server, through piper_sdk over CAN (REFERENCE §E, §E.1).

The Piper is position-controlled: its firmware runs the joint loop and takes joint targets (JointCtrl, 0.001 deg)
or flange-pose targets (EndPoseCtrl, 0.001 mm and 0.001 deg, XYZ Euler angles in the base frame). There is no
Cartesian impedance, so:
- `set_cartesian_target` sends an end-pose target (MOVE P) clamped to the measured pose +- the task's clip per base
  axis (SERL's clip of the pose error, as the Franka backend applies it), on top of the server's safety box;
- `set_compliance` keeps only the clips: stiffness and damping are not applicable to this arm and are ignored
  (said once in the log, never emulated);
- force and torque are not measured: `get_state` reports zeros for them.

Frames and units: poses are of the TCP in the arm's base frame, as in our sim Piper (`serl_envs.sim.arms.piper`): the
TCP is HAND_TCP_OFFSET beyond the flange along its z axis, in the hand frame, which is the flange frame turned pi
about z. Joint velocities come from the drivers' high-speed feedback (0x251-0x256, 0.001 rad/s) while it streams,
otherwise from finite differences of the joint feedback; the TCP twist always from finite differences of the pose.

SDK quirks handled here (REFERENCE §E.1): `C_PiperInterface_V2` is a per-CAN-name singleton (a stale, disconnected
instance is dropped before connecting, ours is dropped after disconnecting); `DisconnectPort()` leaves the
CAN-monitor and FPS threads running and does not join the read thread (stopped and joined here); `CreateCanBus`
passes python-can's deprecated `bustype` (the DeprecationWarning is filtered around that call); EndPoseCtrl silently
ignores non-`int` values (conversions return Python ints); feedback getters return live objects that the read
thread mutates (fields are copied out at once); commands share one SDK message object (sends are serialized).
Disconnecting leaves the arm enabled and holding its last target: disabling the motors would drop it.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
import warnings
from typing import Any

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.real.backends.base import (
    ArmLimits,
    ArmReading,
    BaseGripperServer,
    BaseRobotServer,
    FaultError,
    MotionError,
    clamp_to_clip,
)
from serl_envs.real.config import StationConfig
from serl_envs.sim.arms.piper import GRIPPER, HAND_TCP_OFFSET, Q_HIGH, Q_LOW
from serl_envs.transforms import quat_conj, quat_mul, quat_rotate, rotvec_from_quat

log = logging.getLogger(__name__)

CAN_INTERFACES = ("socketcan", "virtual", "slcan")
CAN_BITRATE = 1_000_000
MAX_GRIPPER_WIDTH = 2 * GRIPPER.travel  # m, 0-70 mm stroke
MAX_GRIPPER_EFFORT = 5.0  # N m, GripperCtrl accepts 0-5000 (0.001 N m)
HAND_QUAT = np.array([0.0, 0.0, 0.0, 1.0])  # flange -> hand: pi about z, as `add_piper` mounts the gripper
# The TCP's reach around the base: flange reach (0.285 + 0.251 + 0.091 m) plus the TCP offset, and down to 0.2 m
# below the base for arms on a riser. A station's safety box (checked by the server) is tighter.
WORKSPACE = ((-0.77, -0.77, -0.2), (0.77, 0.77, 0.9))

# MotionCtrl_2 (0x151) and MotionCtrl_1 (0x150) codes
CTRL_MODE_CAN = 0x01
MOVE_P, MOVE_J, MOVE_L = 0x00, 0x01, 0x02
RESUME = 0x02  # MotionCtrl_1 emergency_stop field: 0x01 stop, 0x02 resume
GRIPPER_ENABLE, GRIPPER_ENABLE_CLEAR = 0x01, 0x03

ARM_STATUS = {  # GetArmStatus().arm_status codes (0x2A1 byte 1); 0 is normal
    0x01: "emergency_stop", 0x02: "no_ik_solution", 0x03: "singularity", 0x04: "target_exceeds_joint_limit",
    0x05: "joint_communication_error", 0x06: "joint_brake_not_released", 0x07: "collision",
    0x08: "teach_drag_overspeed", 0x09: "joint_status_error", 0x0A: "other_error", 0x0B: "teaching_record",
    0x0C: "teaching_execution", 0x0D: "teaching_pause", 0x0E: "controller_over_temperature",
    0x0F: "release_resistor_over_temperature",
}
CTRL_MODE_TEACHING = 0x02

POLL = 0.005  # s between feedback checks while waiting
FEEDBACK_STALE = 0.25  # s without a status frame after which the arm is reported silent
HIGH_SPEED_FRESH = 0.1  # s: driver speed feedback older than this is not used for joint velocities
MIN_DIFF_DT = 0.002  # s: finite differences over shorter spans keep the previous velocity
REACHED_JOINT = math.radians(1.0)  # rad: a joint move whose firmware says "reached" must also be this close
REACHED_POS, REACHED_ROT = 0.005, math.radians(2.0)  # m, rad: the same for end-pose moves


# --- unit conversions (SI <-> piper_sdk integers) ------------------------------------------------------------
def rad_to_mdeg(angles: Any) -> list[int]:
    """Radians -> integer 0.001 degree (JointCtrl, EndPoseCtrl RX/RY/RZ)."""
    return [int(round(math.degrees(float(a)) * 1000.0)) for a in np.atleast_1d(angles)]


def mdeg_to_rad(values: Any) -> np.ndarray:
    """Integer 0.001 degree -> radians."""
    return np.radians(np.asarray(values, dtype=np.float64) / 1000.0)


def m_to_um(lengths: Any) -> list[int]:
    """Metres -> integer 0.001 mm (EndPoseCtrl X/Y/Z, GripperCtrl stroke)."""
    return [int(round(float(x) * 1e6)) for x in np.atleast_1d(lengths)]


def um_to_m(values: Any) -> np.ndarray:
    """Integer 0.001 mm -> metres."""
    return np.asarray(values, dtype=np.float64) / 1e6


def nm_to_mnm(effort: float) -> int:
    """N m -> integer 0.001 N m (GripperCtrl effort)."""
    return int(round(float(effort) * 1000.0))


def euler_to_quat(rx: float, ry: float, rz: float) -> np.ndarray:
    """The Piper's end-pose angles (rad) -> quaternion (w, x, y, z): R = Rz(rz) Ry(ry) Rx(rx), i.e. roll, pitch
    and yaw about the fixed base axes (piper_sdk's `C_PiperForwardKinematics` convention)."""
    qx = np.array([math.cos(rx / 2), math.sin(rx / 2), 0.0, 0.0])
    qy = np.array([math.cos(ry / 2), 0.0, math.sin(ry / 2), 0.0])
    qz = np.array([math.cos(rz / 2), 0.0, 0.0, math.sin(rz / 2)])
    return quat_mul(qz, quat_mul(qy, qx))


def quat_to_euler(quat: np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z) -> (rx, ry, rz) rad with R = Rz(rz) Ry(ry) Rx(rx); at ry = +-90 deg (gimbal lock)
    rz is 0 and rx carries the rotation, as the SDK's own conversion does."""
    w, x, y, z = (np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)).tolist()
    r00, r10 = 1 - 2 * (y * y + z * z), 2 * (x * y + w * z)
    r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    r01, r11 = 2 * (x * y - w * z), 1 - 2 * (x * x + z * z)
    if abs(r20) > 1 - 1e-9:  # pitch +-90 deg
        ry = -math.copysign(math.pi / 2, r20)
        return np.array([-math.copysign(1.0, r20) * math.atan2(r01, r11), ry, 0.0])
    return np.array([math.atan2(r21, r22), math.atan2(-r20, math.hypot(r00, r10)), math.atan2(r10, r00)])


def tcp_from_flange(flange_pos: np.ndarray, flange_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The TCP pose of our gripper (hand frame, HAND_TCP_OFFSET along its z) from the flange pose."""
    quat = quat_mul(flange_quat, HAND_QUAT)
    return flange_pos + quat_rotate(quat, np.array([0.0, 0.0, HAND_TCP_OFFSET])), quat


def flange_from_tcp(tcp_pos: np.ndarray, tcp_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `tcp_from_flange`."""
    pos = tcp_pos - quat_rotate(tcp_quat, np.array([0.0, 0.0, HAND_TCP_OFFSET]))
    return pos, quat_mul(tcp_quat, quat_conj(HAND_QUAT))


def tcp_to_end_pose(position: np.ndarray, quat: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """A TCP pose (m, quaternion) -> EndPoseCtrl's flange X, Y, Z (0.001 mm) and RX, RY, RZ (0.001 deg)."""
    pos, fquat = flange_from_tcp(np.asarray(position, float), np.asarray(quat, float))
    return (*m_to_um(pos), *rad_to_mdeg(quat_to_euler(fquat)))


def end_pose_to_tcp(end_pose: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """End-pose feedback (flange X, Y, Z in 0.001 mm; RX, RY, RZ in 0.001 deg) -> TCP position (m), quaternion."""
    pos = um_to_m(end_pose[:3])
    return tcp_from_flange(pos, euler_to_quat(*mdeg_to_rad(end_pose[3:])))


# --- command line -------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("piper backend")
    group.add_argument("--can-port", default="can0", help="CAN interface the Piper is on (default can0)")
    group.add_argument("--can-interface", choices=CAN_INTERFACES, default="socketcan",
                       help="python-can interface: socketcan (USB-CAN adapter), slcan (serial dongle), virtual (tests)")
    group.add_argument("--speed-percent", type=int, default=30,
                       help="the firmware's speed rate for every move, 1-100 %% (default 30)")
    group.add_argument("--gripper-effort", type=float, default=1.0,
                       help=f"gripper force limit in N m, 0-{MAX_GRIPPER_EFFORT:g} (default 1)")
    group.add_argument("--enable-timeout", type=float, default=5.0,
                       help="s to wait for feedback and for the motors to enable on connect (default 5)")
    group.add_argument("--move-timeout", type=float, default=30.0,
                       help="s a blocking move may take before it fails (default 30)")


def create(args: argparse.Namespace, station: StationConfig) -> PiperServer:
    return PiperServer(can_port=args.can_port, can_interface=args.can_interface, speed_percent=args.speed_percent,
                       gripper_effort=args.gripper_effort, enable_timeout=args.enable_timeout,
                       move_timeout=args.move_timeout)


def _import_sdk():
    try:
        from piper_sdk import C_PiperInterface_V2
    except ImportError as err:
        raise ImportError('the piper backend needs piper_sdk and python-can: pip install "serl-torch[piper]"') from err
    return C_PiperInterface_V2


class _Differentiator:
    """Finite differences of a timestamped signal; spans shorter than MIN_DIFF_DT keep the previous rate."""

    def __init__(self, size: int) -> None:
        self._t: float | None = None
        self._x = np.zeros(size)
        self.rate = np.zeros(size)

    def update(self, t: float, x: np.ndarray) -> np.ndarray:
        if self._t is None or t - self._t >= MIN_DIFF_DT:
            if self._t is not None:
                self.rate = (x - self._x) / (t - self._t)
            self._t, self._x = t, x.copy()
        return self.rate


class PiperGripper(BaseGripperServer):
    """The Piper's parallel gripper (GripperCtrl, 0.001 mm stroke = opening width, effort 0.001 N m)."""

    def __init__(self, arm: PiperServer) -> None:
        super().__init__(MAX_GRIPPER_WIDTH)
        self._arm = arm

    def _open(self) -> None:
        self._arm.send_gripper(self.max_width)

    def _close(self) -> None:
        """Close to 0 mm; the effort limit makes it stop on (and hold) an object."""
        self._arm.send_gripper(0.0)

    def _move_to_position(self, width: float) -> None:
        self._arm.send_gripper(width)

    def _position(self) -> float:
        return self._arm.gripper_width()


class PiperServer(BaseRobotServer):
    """An AgileX Piper on a CAN port (see the module docstring for what maps to what)."""

    name = "piper"
    arm = "piper"

    def __init__(
        self,
        can_port: str = "can0",
        can_interface: str = "socketcan",
        speed_percent: int = 30,
        gripper_effort: float = 1.0,
        enable_timeout: float = 5.0,
        move_timeout: float = 30.0,
    ) -> None:
        if not isinstance(can_port, str) or not can_port:
            raise ValueError(f"can_port must be a CAN interface name such as 'can0', got {can_port!r}")
        if can_interface not in CAN_INTERFACES:
            raise ValueError(f"can_interface must be one of {list(CAN_INTERFACES)}, got {can_interface!r}")
        if isinstance(speed_percent, bool) or not isinstance(speed_percent, int) or not 1 <= speed_percent <= 100:
            raise ValueError(f"speed_percent must be an integer in [1, 100], got {speed_percent!r}")
        if not 0.0 <= gripper_effort <= MAX_GRIPPER_EFFORT:
            raise ValueError(f"gripper_effort must be in [0, {MAX_GRIPPER_EFFORT}] N m, got {gripper_effort!r}")
        for name, value in (("enable_timeout", enable_timeout), ("move_timeout", move_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 s, got {value!r}")
        super().__init__(ArmLimits(tuple(Q_LOW.tolist()), tuple(Q_HIGH.tolist()), *WORKSPACE), PiperGripper(self))
        self.can_port, self.can_interface = can_port, can_interface
        self.speed_percent, self.gripper_effort = speed_percent, float(gripper_effort)
        self.enable_timeout, self.move_timeout = float(enable_timeout), float(move_timeout)
        compliance = Compliance()
        self.translational_clip, self.rotational_clip = compliance.translational_clip, compliance.rotational_clip
        self._piper: Any = None
        self._tx = threading.Lock()  # piper_sdk encodes every command into one shared message object
        self._stop_move = threading.Event()
        self._dq = _Differentiator(6)
        self._pose_prev: tuple[float, np.ndarray, np.ndarray] | None = None
        self._twist = np.zeros(6)
        self.target: tuple[np.ndarray, np.ndarray] | None = None  # the last end-pose target sent (after clipping)

    # --- lifecycle ------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        sdk = _import_sdk()
        stale = sdk._instances.get(self.can_port)
        if stale is not None:
            if stale.get_connect_status():
                raise RuntimeError(f"a piper_sdk interface on {self.can_port!r} is already connected in this process")
            sdk._instances.pop(self.can_port)  # its constructor arguments would otherwise be reused
        piper = sdk(self.can_port, judge_flag=False, can_auto_init=False)
        try:
            with warnings.catch_warnings():  # piper_sdk passes python-can's deprecated `bustype`
                warnings.filterwarnings("ignore", message=".*bustype.*", category=DeprecationWarning)
                piper.CreateCanBus(self.can_port, bustype=self.can_interface, expected_bitrate=CAN_BITRATE,
                                   judge_flag=self.can_interface == "socketcan")
            bus = piper.GetCanBus()
            if bus is None or bus.recv_bus is None or bus.send_bus is None:
                raise ConnectionError("python-can could not open the bus")
        except ConnectionError as err:
            sdk._instances.pop(self.can_port, None)
            raise ConnectionError(
                f"cannot open CAN port {self.can_port!r} ({self.can_interface}): {err}. Is the USB-CAN adapter "
                f"plugged in and up at 1 Mbit/s (`sudo ip link set {self.can_port} up type can bitrate 1000000`, "
                "or piper_sdk's can_activate.sh)?"
            ) from err
        piper.ConnectPort(piper_init=False)
        self._piper = piper
        try:
            if not self._poll(lambda: piper.GetArmStatus().time_stamp > 0 and piper.GetArmJointMsgs().time_stamp > 0,
                              self.enable_timeout):
                raise ConnectionError(f"no feedback from a Piper on {self.can_port!r} within {self.enable_timeout:g} s: "
                                      "is the arm powered and on this CAN port?")
            self._enable()
        except BaseException:
            self._release()
            raise

    def _enable(self) -> None:
        """Enable the six motors (bounded), then the gripper and CAN control mode."""
        piper = self._piper
        deadline = time.monotonic() + self.enable_timeout
        while not all(piper.GetArmEnableStatus()):
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"the Piper on {self.can_port!r} did not enable within {self.enable_timeout:g} s (motor enable "
                    f"states {list(piper.GetArmEnableStatus())}): check its e-stop and power"
                )
            with self._tx:
                piper.EnableArm(7, 0x02)
            time.sleep(0.01)
        with self._tx:
            piper.GripperCtrl(m_to_um(self.gripper_width())[0], nm_to_mnm(self.gripper_effort), GRIPPER_ENABLE, 0)
            piper.MotionCtrl_2(CTRL_MODE_CAN, MOVE_J, self.speed_percent, 0x00)

    def _disconnect(self) -> None:
        self._stop_move.set()
        self._release()

    def _release(self) -> None:
        """Close the CAN bus and the SDK's threads, and drop our singleton (see the module docstring)."""
        piper, self._piper = self._piper, None
        if piper is None:
            return
        piper.DisconnectPort()
        getattr(piper, "_C_PiperInterface_V2__can_monitor_stop_event", threading.Event()).set()
        fps = getattr(piper, "_C_PiperInterface_V2__fps_counter", None)
        if fps is not None:
            fps.stop()
        for name in ("__can_deal_th", "__can_monitor_th"):
            thread = getattr(piper, f"_C_PiperInterface_V2{name}", None)
            if isinstance(thread, threading.Thread) and thread is not threading.current_thread():
                thread.join(timeout=2.0)  # the read thread wakes from its 1 s receive timeout
        sdk = type(piper)
        if sdk._instances.get(self.can_port) is piper:
            sdk._instances.pop(self.can_port)

    # --- feedback -------------------------------------------------------------------------------------------
    def _feedback(self) -> dict[str, Any]:
        """Copy the fields we use out of the SDK's live feedback objects."""
        piper = self._piper
        if piper is None:
            raise RuntimeError("piper backend is not connected; call connect() first")
        js = piper.GetArmJointMsgs()
        joints = (js.time_stamp, [getattr(js.joint_state, f"joint_{i}") for i in range(1, 7)])
        ep = piper.GetArmEndPoseMsgs()
        e = ep.end_pose
        end_pose = (ep.time_stamp, (e.X_axis, e.Y_axis, e.Z_axis, e.RX_axis, e.RY_axis, e.RZ_axis))
        st = piper.GetArmStatus()
        s = st.arm_status
        err = s.err_status
        status = {
            "time": st.time_stamp, "ctrl_mode": int(s.ctrl_mode), "arm_status": int(s.arm_status),
            "motion_status": int(s.motion_status),
            "limits": [getattr(err, f"joint_{i}_angle_limit") for i in range(1, 7)],
            "comm": [getattr(err, f"communication_status_joint_{i}") for i in range(1, 7)],
        }
        hs = piper.GetArmHighSpdInfoMsgs()
        speeds = (hs.time_stamp, [getattr(hs, f"motor_{i}").motor_speed for i in range(1, 7)])
        return {"joints": joints, "end_pose": end_pose, "status": status, "speeds": speeds,
                "enabled": list(piper.GetArmEnableStatus())}

    def _errors(self, fb: dict[str, Any]) -> tuple[str, ...]:
        s = fb["status"]
        errors = []
        age = time.time() - s["time"]
        if age > FEEDBACK_STALE:
            errors.append(f"no_feedback: no status frame from the arm for {age:.2f} s")
        if s["arm_status"] in ARM_STATUS:
            errors.append(f"{ARM_STATUS[s['arm_status']]} (arm_status 0x{s['arm_status']:02X})")
        elif s["arm_status"] != 0:
            errors.append(f"unknown_arm_status 0x{s['arm_status']:02X}")
        if s["ctrl_mode"] == CTRL_MODE_TEACHING:
            errors.append("teaching_mode: the arm is in drag-teach mode and ignores CAN commands")
        for what, flags in (("joint_angle_limit", s["limits"]), ("joint_communication_error", s["comm"])):
            bad = [i + 1 for i, f in enumerate(flags) if f]
            if bad:
                errors.append(f"{what} on joints {bad}")
        disabled = [i + 1 for i, en in enumerate(fb["enabled"]) if not en]
        if disabled:
            errors.append(f"motors_disabled on joints {disabled}")
        return tuple(errors)

    def _read(self) -> ArmReading:
        fb = self._feedback()
        t_joints, joint_mdeg = fb["joints"]
        q = mdeg_to_rad(joint_mdeg)
        t_speed, speeds = fb["speeds"]
        dq_fd = self._dq.update(t_joints, q)
        dq = np.asarray(speeds, float) / 1000.0 if time.time() - t_speed < HIGH_SPEED_FRESH else dq_fd
        t_pose, end_pose = fb["end_pose"]
        pos, quat = end_pose_to_tcp(end_pose)
        zeros = np.zeros(3)
        return ArmReading(q, dq, pos, quat, self._update_twist(t_pose, pos, quat), zeros, zeros.copy(), self._errors(fb))

    def _update_twist(self, t: float, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        """TCP twist by finite differences of the end-pose feedback (the firmware reports no Cartesian velocity)."""
        prev = self._pose_prev
        if prev is None or t - prev[0] >= MIN_DIFF_DT:
            if prev is not None:
                dt = t - prev[0]
                turn = rotvec_from_quat(quat_mul(quat, quat_conj(prev[2])))
                self._twist = np.concatenate([(pos - prev[1]) / dt, turn / dt])
            self._pose_prev = (t, pos.copy(), quat.copy())
        return self._twist.copy()

    def gripper_width(self) -> float:
        """Measured opening in metres (0x2A8)."""
        if self._piper is None:
            raise RuntimeError("piper backend is not connected; call connect() first")
        return float(um_to_m(self._piper.GetArmGripperMsgs().gripper_state.grippers_angle))

    # --- commands -------------------------------------------------------------------------------------------
    def send_gripper(self, width: float) -> None:
        if self._piper is None:
            raise RuntimeError("piper backend is not connected; call connect() first")
        with self._tx:
            self._piper.GripperCtrl(m_to_um(width)[0], nm_to_mnm(self.gripper_effort), GRIPPER_ENABLE, 0)

    def _send_end_pose(self, position: np.ndarray, quat: np.ndarray, move_mode: int) -> None:
        with self._tx:
            self._piper.MotionCtrl_2(CTRL_MODE_CAN, move_mode, self.speed_percent, 0x00)
            self._piper.EndPoseCtrl(*tcp_to_end_pose(position, quat))
        self.target = (position.copy(), quat.copy())

    def _send_joints(self, q: np.ndarray) -> None:
        with self._tx:
            self._piper.MotionCtrl_2(CTRL_MODE_CAN, MOVE_J, self.speed_percent, 0x00)
            self._piper.JointCtrl(*rad_to_mdeg(q))

    def _set_cartesian_target(self, position: np.ndarray, quat: np.ndarray) -> None:
        self._stop_move.set()  # a streamed target interrupts a blocking move
        fb = self._feedback()
        cur_pos, cur_quat = end_pose_to_tcp(fb["end_pose"][1])
        pos, q = clamp_to_clip(position, quat, cur_pos, cur_quat, self.translational_clip, self.rotational_clip)
        self._send_end_pose(pos, q, MOVE_P)

    def _move_to_cartesian_pose(self, position: np.ndarray, quat: np.ndarray) -> None:
        self._stop_move.clear()
        self._send_end_pose(position, quat, MOVE_L)

        def reached(fb: dict[str, Any]) -> bool:
            pos, q = end_pose_to_tcp(fb["end_pose"][1])
            rot = float(np.linalg.norm(rotvec_from_quat(quat_mul(quat, quat_conj(q)))))
            return float(np.linalg.norm(pos - position)) < REACHED_POS and rot < REACHED_ROT

        self._wait_motion("cartesian", reached)

    def _move_to_joint_positions(self, q: np.ndarray) -> None:
        self._stop_move.clear()
        self._send_joints(q)
        self._wait_motion(
            "joint", lambda fb: float(np.max(np.abs(mdeg_to_rad(fb["joints"][1]) - q))) < REACHED_JOINT
        )

    def _wait_motion(self, kind: str, near_goal) -> None:
        """Until the firmware reports the target reached (motion_status 0) with the arm near it; else MotionError."""
        deadline = time.monotonic() + self.move_timeout
        while True:
            fb = self._feedback()
            errors = self._errors(fb)
            if errors:
                raise MotionError(f"{kind} move aborted by arm faults {list(errors)}")
            if self._stop_move.is_set():
                raise MotionError(f"{kind} move aborted by stop() or a streamed target")
            if fb["status"]["motion_status"] == 0 and near_goal(fb):
                return
            if time.monotonic() > deadline:
                self._stop()
                raise MotionError(f"{kind} move did not reach its target within {self.move_timeout:g} s")
            time.sleep(POLL)

    def _set_compliance(self, compliance: Compliance) -> None:
        """Keep the clips; the Piper is position-controlled, so stiffness and damping do not apply."""
        self.translational_clip, self.rotational_clip = compliance.translational_clip, compliance.rotational_clip
        log.info("piper: position-controlled arm; using only the pose clips %s m / %s rad (stiffness and damping "
                 "are not applicable)", compliance.translational_clip, compliance.rotational_clip)

    def _clear_errors(self) -> None:
        """Resume from e-stop/faults (MotionCtrl_1 resume), re-enable the motors and the gripper, back to CAN
        control; raises FaultError with what remains if the arm does not recover within enable_timeout."""
        piper = self._piper
        with self._tx:
            piper.MotionCtrl_1(RESUME, 0x00, 0x00)
        if self._poll(lambda: self._feedback()["status"]["arm_status"] == 0, self.enable_timeout):
            try:
                self._enable()
            except ConnectionError:
                pass  # the motors that stay disabled are reported below
        with self._tx:
            piper.GripperCtrl(m_to_um(self.gripper_width())[0], nm_to_mnm(self.gripper_effort), GRIPPER_ENABLE_CLEAR, 0)
        errors = self._errors(self._feedback())
        if errors:
            raise FaultError(errors)

    def _stop(self) -> None:
        """Hold: abort a blocking move and make the measured joint positions the target."""
        self._stop_move.set()
        self._send_joints(mdeg_to_rad(self._feedback()["joints"][1]))

    @staticmethod
    def _poll(condition, timeout: float) -> bool:
        """Whether `condition()` became true within `timeout` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL)
        return True

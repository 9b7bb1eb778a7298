"""The Franka backend: a Panda (FER, or an FR3) and its Franka Hand through franky.

    pip install "serl-torch[franka]"
    serl robot-server --backend franka --robot-ip 172.16.0.2 --station station.yaml [--realtime ignore]

Why franky and not pylibfranka. Both are pip wheels that bundle libfranka. franky's
`CartesianImpedanceTracker` runs the Cartesian impedance law in libfranka's 1 kHz control thread, in C++,
and takes online targets (`set_target`) and runtime gains (`set_gains`) from Python; it also plans blocking
motions (Ruckig) and recovers from errors. pylibfranka, the official binding, gives Cartesian impedance
from Python only by writing the torque law in a Python `read_once`/`write_once` loop, so every 1 ms cycle
would depend on the GIL and the garbage collector: the cause of the `communication_constraints_violation`
reflexes SERL-style stacks hit. With franky, Python never runs inside the 1 kHz loop (this module
registers no Python callbacks or reactions): it only sets a target at the env's rate.

SERL's controller clips the equilibrium-pose error per axis, which caps the contact force at
stiffness * clip. This backend reproduces it by clamping every streamed target to the measured pose
+- `translational_clip` (per base axis) and +- `rotational_clip` (per axis of the base-frame rotation
vector) before it is sent; franky 2.0's tracker also clips the error in its 1 kHz loop with the same
values, so the cap holds when the arm is pushed between two targets.

Process rule: run this only in the robot-server process, never next to cameras, image processing or
learning (the env and its cameras run in another process and reach the arm over HTTP). The real-time
kernel check is on by default (`--realtime enforce`: a robot needs a PREEMPT_RT kernel); development
machines without one need `--realtime ignore` and will see reflexes under load.

Faults: reflexes and other libfranka errors (the robot state's active errors, the robot mode, the text of
the ControlException that ended a motion, a failed gripper command) are reported in
`get_state()["errors"]`, block motion commands with a FaultError (HTTP 409 with the list) and are cleared
by `clear_errors()`, which runs libfranka's automatic error recovery and restarts the impedance controller
at the current pose.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

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

INSTALL_HINT = 'pip install "serl-torch[franka]"'
# Panda (FER) joint limits, rad (Franka's datasheet). An FR3 has other limits: see REFERENCE/Franka docs.
PANDA_Q_LOW = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
PANDA_Q_HIGH = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
# m: the Panda's 855 mm reach around its base, a little below the mounting plane (tables lower than the base)
WORKSPACE = ((-0.855, -0.855, -0.05), (0.855, 0.855, 1.19))
HAND_MAX_WIDTH = 0.08  # m, Franka Hand fully open
CLOSE_WIDTH = 1e-3  # m: a requested width at or below this closes with force (grasp), like close()
GRIPPER_POLL = 0.02  # s between reads of the gripper width (get_state returns the cached value)
REALTIME = ("enforce", "ignore")

T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("franka backend (franky)")
    group.add_argument("--robot-ip", required=True,
                       help="the arm's FCI address (Desk: FCI activated, joints unlocked)")
    group.add_argument("--realtime", choices=REALTIME, default="enforce",
                       help="libfranka's real-time kernel check: enforce (default; robots need a "
                            "PREEMPT_RT kernel) or ignore (development machines without one; expect "
                            "reflexes under load)")
    group.add_argument("--dynamics-factor", type=float, default=0.1,
                       help="relative dynamics factor (0, 1] of blocking moves (resets): scales franky's "
                            "velocity, acceleration and jerk limits")
    group.add_argument("--connect-timeout", type=float, default=5.0,
                       help="s to wait for the arm and the gripper to answer before giving up")
    group.add_argument("--gripper-speed", type=float, default=0.1, help="Franka Hand speed, m/s")
    group.add_argument("--grasp-force", type=float, default=70.0,
                       help="Franka Hand grasp force, N (70 N continuous, 140 N peak; SERL uses 130)")
    group.add_argument("--force-threshold", type=float, default=30.0,
                       help="libfranka collision behaviour: Cartesian force (N) above which the arm reflexes")
    group.add_argument("--torque-threshold", type=float, default=20.0,
                       help="libfranka collision behaviour: joint torque (Nm) above which the arm reflexes")


def create(args: argparse.Namespace, station: StationConfig) -> FrankaServer:
    return FrankaServer(
        robot_ip=args.robot_ip, realtime=args.realtime, dynamics_factor=args.dynamics_factor,
        connect_timeout=args.connect_timeout, gripper_speed=args.gripper_speed, grasp_force=args.grasp_force,
        force_threshold=args.force_threshold, torque_threshold=args.torque_threshold,
        compliance=station.compliance,
    )


def import_franky() -> ModuleType:
    try:
        import franky
    except ModuleNotFoundError as err:
        raise ImportError(f"the franka backend needs franky (franky-control): {INSTALL_HINT}") from err
    return franky


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a hardware constructor on a daemon thread; give up after `timeout` s (a connect can hang forever).

    On a timeout the thread is left behind (it cannot be interrupted); it ends when the call returns."""
    result: list[Any] = []
    error: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(err)
        finally:
            done.set()

    threading.Thread(target=run, name="franka-connect", daemon=True).start()
    if not done.wait(timeout):
        raise ConnectionError(f"{what} did not answer within {timeout} s: check the address, the cable and "
                              "that the arm is on with FCI activated in Desk")
    if error:
        raise error[0]
    return result[0]


def active_errors(errors: Any) -> list[str]:
    """Names of the flags set in a franky `Errors` (its boolean properties, e.g. "cartesian_reflex")."""
    cls = type(errors)
    return [name for name in dir(cls) if not name.startswith("_") and isinstance(getattr(cls, name), property)
            and getattr(errors, name) is True]


def message(err: BaseException) -> str:
    """An SDK exception's text on one line (libfranka appends the command success rate on a new line)."""
    return " ".join(str(err).split())


def damping(c: Compliance) -> np.ndarray:
    """franky's damping 6-vector (x y z rx ry rz) from a Compliance."""
    return np.array([c.translational_damping] * 3 + [c.rotational_damping] * 3)


def xyzw(quat_wxyz: np.ndarray) -> np.ndarray:
    return np.array([quat_wxyz[1], quat_wxyz[2], quat_wxyz[3], quat_wxyz[0]])


def wxyz(quat_xyzw: Any) -> np.ndarray:
    q = np.asarray(quat_xyzw, dtype=np.float64).reshape(4)
    return np.array([q[3], q[0], q[1], q[2]])


class FrankaGripper(BaseGripperServer):
    """The Franka Hand through `franky.Gripper`: width in m, speed in m/s, grasp force in N.

    libfranka's gripper commands block until the fingers stop, so they run on a worker thread (the latest
    request wins; a superseded one is dropped), and a reader thread caches the width so `position` returns
    at once."""

    def __init__(self, speed: float = 0.1, force: float = 70.0, max_width: float = HAND_MAX_WIDTH) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"gripper speed must be > 0 m/s, got {speed}")
        if not (math.isfinite(force) and force > 0):
            raise ValueError(f"grasp force must be > 0 N, got {force}")
        super().__init__(max_width)
        self.speed, self.force = float(speed), float(force)
        self._gripper: Any = None
        self._franky: ModuleType | None = None
        self._width = float(max_width)
        self._pending: tuple[str, float] | None = None
        self._wake = threading.Condition()
        self._running = False
        self._threads: list[threading.Thread] = []
        self.error: str | None = None  # the last failed command, reported in the arm's errors until cleared

    def connect(self, franky: ModuleType, robot_ip: str, timeout: float) -> None:
        self._franky = franky
        self._gripper = call_with_timeout(lambda: franky.Gripper(robot_ip), timeout,
                                          f"the Franka Hand at {robot_ip}")
        self._width = float(self._gripper.width)
        self._running = True
        self._threads = [threading.Thread(target=self._command_loop, name="franka-gripper", daemon=True),
                         threading.Thread(target=self._read_loop, name="franka-gripper-state", daemon=True)]
        for t in self._threads:
            t.start()

    def disconnect(self) -> None:
        with self._wake:
            self._running = False
            self._pending = None
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout=5.0)
        self._threads, self._gripper = [], None

    def clear_error(self) -> None:
        self.error = None

    # --- hooks ----------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._submit("open", self.max_width)

    def _close(self) -> None:
        self._submit("grasp", 0.0)

    def _move_to_position(self, width: float) -> None:
        self._submit("grasp" if width <= CLOSE_WIDTH else "move", width)

    def _position(self) -> float:
        return self._width

    # --- threads --------------------------------------------------------------------------------------------
    def _submit(self, kind: str, width: float) -> None:
        if self._gripper is None:
            raise RuntimeError("the Franka Hand is not connected; call connect() first")
        with self._wake:
            self._pending = (kind, width)
            self._wake.notify_all()

    def _command_loop(self) -> None:
        while True:
            with self._wake:
                while self._running and self._pending is None:
                    self._wake.wait()
                if not self._running:
                    return
                kind, width = self._pending
                self._pending = None
            self._run(kind, width)

    def _run(self, kind: str, width: float) -> None:
        g, franky = self._gripper, self._franky
        try:
            if kind == "open":
                g.open(self.speed)
            elif kind == "grasp":
                # any stop counts as a grasp (epsilon_outer spans the stroke): holding with force is the point
                g.grasp(width, self.speed, self.force, epsilon_inner=0.005, epsilon_outer=self.max_width)
            else:
                g.move(width, self.speed)
        except (franky.GripperException, franky.CommandException, franky.NetworkException) as err:
            self.error = f"{kind} to {width:.4f} m failed: {message(err)}"

    def _read_loop(self) -> None:
        franky = self._franky
        while self._running:
            try:
                self._width = float(self._gripper.width)
            except (franky.GripperException, franky.NetworkException) as err:
                self.error = f"reading the width failed: {message(err)}"
            time.sleep(GRIPPER_POLL)


class FrankaServer(BaseRobotServer):
    """A Franka arm under franky's Cartesian impedance tracker, with its hand (see the module docstring).

    `franky` may be passed a module with franky's API (tests pass one whose Robot/Gripper drive a simulation);
    by default the installed franky is imported here, not at module import."""

    name = "franka"
    arm = "panda"

    def __init__(
        self,
        robot_ip: str,
        *,
        realtime: str = "enforce",
        dynamics_factor: float = 0.1,
        connect_timeout: float = 5.0,
        gripper_speed: float = 0.1,
        grasp_force: float = 70.0,
        force_threshold: float = 30.0,
        torque_threshold: float = 20.0,
        compliance: Compliance | None = None,
        franky: ModuleType | None = None,
    ) -> None:
        if not isinstance(robot_ip, str) or not robot_ip:
            raise ValueError(f"robot_ip must be the arm's FCI hostname or IP, got {robot_ip!r}")
        if realtime not in REALTIME:
            raise ValueError(f"realtime must be one of {REALTIME}, got {realtime!r}")
        if not (math.isfinite(dynamics_factor) and 0 < dynamics_factor <= 1):
            raise ValueError(f"dynamics_factor must be in (0, 1], got {dynamics_factor}")
        for label, value in (("connect_timeout", connect_timeout), ("force_threshold", force_threshold),
                             ("torque_threshold", torque_threshold)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be > 0, got {value}")
        self._franky = franky if franky is not None else import_franky()
        self.robot_ip, self.realtime, self.dynamics_factor = robot_ip, realtime, float(dynamics_factor)
        self.connect_timeout = float(connect_timeout)
        self._thresholds = (float(torque_threshold), float(force_threshold))
        self._compliance = compliance if compliance is not None else Compliance()
        hand = FrankaGripper(gripper_speed, grasp_force)
        super().__init__(ArmLimits(PANDA_Q_LOW, PANDA_Q_HIGH, *WORKSPACE), hand)
        self.gripper: FrankaGripper = hand
        self._robot: Any = None
        self._tracker: Any = None
        self._lock = threading.RLock()  # tracker lifecycle, fault and target
        self._fault: str | None = None  # the exception that ended the last motion, until clear_errors()
        self._moving = False
        self._stop_requested = False
        self._last: ArmReading | None = None
        self.target: tuple[np.ndarray, np.ndarray] | None = None  # the last target sent, after the clip

    @property
    def compliance(self) -> Compliance:
        return self._compliance

    # --- lifecycle ------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        f = self._franky
        config = f.RealtimeConfig.Enforce if self.realtime == "enforce" else f.RealtimeConfig.Ignore
        torque, force = self._thresholds

        def construct():
            return f.Robot(self.robot_ip, default_torque_threshold=torque, default_force_threshold=force,
                           realtime_config=config)

        try:
            robot = call_with_timeout(construct, self.connect_timeout, f"the Franka at {self.robot_ip}")
            self.gripper.connect(f, self.robot_ip, self.connect_timeout)
        except f.NetworkException as err:
            raise ConnectionError(f"could not connect to the Franka at {self.robot_ip}: {message(err)} "
                                  "(is the arm on, FCI activated in Desk and this PC on the arm's network?)"
                                  ) from err
        except f.IncompatibleVersionException as err:
            raise ConnectionError(f"the Franka at {self.robot_ip} runs another libfranka server version than "
                                  f"franky-control bundles: {message(err)}; install the franky wheel built "
                                  "for it") from err
        except f.RealtimeException as err:
            raise RuntimeError(self._realtime_hint(err)) from err
        self._robot = robot
        try:
            with self._lock:
                if not self._robot.has_errors:  # a faulted arm shows its errors and waits for clear_errors()
                    self._start_tracker(raise_realtime=True)
        except BaseException:
            self.gripper.disconnect()
            self._robot = None
            raise

    def _disconnect(self) -> None:
        with self._lock:
            self._end_tracker()
        self.gripper.disconnect()
        self._robot = None

    def _realtime_hint(self, err: BaseException) -> str:
        return (f"libfranka's real-time check failed for the Franka at {self.robot_ip}: {message(err)}. Run "
                "the robot server on a PREEMPT_RT kernel, or pass --realtime ignore (realtime='ignore') on a "
                "development machine")

    # --- the impedance controller ---------------------------------------------------------------------------
    def _tracker_kwargs(self) -> dict[str, Any]:
        c, f = self._compliance, self._franky
        return {
            "translational_stiffness": c.translational_stiffness,
            "rotational_stiffness": c.rotational_stiffness,
            "damping": damping(c),
            "translational_error_clip": np.array(c.translational_clip, dtype=np.float64),
            "rotational_error_clip": np.array(c.rotational_clip, dtype=np.float64),
            # SERL's nullspace term: pull the elbow towards the posture the controller started in.
            "posture_task": f.PostureTask(np.asarray(self._robot.state.q, dtype=np.float64),
                                          c.nullspace_stiffness),
        }

    def _start_tracker(self, raise_realtime: bool = False) -> None:
        """Start a tracker holding the current pose (it takes over from a running one); failing is a fault."""
        f = self._franky
        try:
            self._tracker = f.CartesianImpedanceTracker(self._robot, **self._tracker_kwargs())
        except f.RealtimeException as err:
            self._tracker = None
            if raise_realtime:
                raise RuntimeError(self._realtime_hint(err)) from err
            self._fault = self._realtime_hint(err)
        except (f.ControlException, f.CommandException, f.NetworkException) as err:
            self._tracker, self._fault = None, f"impedance controller did not start: {message(err)}"
        self.target = None

    def _end_tracker(self, tracker: Any = None) -> None:
        """Bring the arm to rest under franky's TorqueStopMotion, ending the torque loop of `tracker` (by
        default the current one)."""
        if tracker is None:
            tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        try:
            tracker.stop()
        except self._franky.ControlException as err:
            self._fault = f"control_exception: {message(err)}"

    def _tracker_alive(self) -> bool:
        """Whether the tracker still runs; records the ControlException of one that a reflex ended."""
        if self._tracker is None:
            return False
        if self._robot.is_in_control:
            return True
        self._tracker = None
        try:
            self._robot.poll_motion()
        except self._franky.ControlException as err:
            self._fault = f"control_exception: {message(err)}"
        return False

    # --- hooks ----------------------------------------------------------------------------------------------
    def _read(self) -> ArmReading:
        f = self._franky
        with self._lock:
            if not self._moving:
                self._tracker_alive()
            fault = self._fault
        try:
            s = self._robot.state
        except (f.NetworkException, f.ControlException, f.CommandException) as err:
            if self._last is None:
                raise ConnectionError(f"lost the Franka at {self.robot_ip}: {message(err)}") from err
            errors = (*self._last.errors, f"network: {message(err)}")
            return ArmReading(**{**vars(self._last), "errors": errors})
        pose = s.O_T_EE
        twist = s.O_dP_EE_est
        if twist is None:
            twist = self._robot.current_cartesian_velocity.end_effector_twist
        wrench = np.asarray(s.K_F_ext_hat_K, dtype=np.float64)
        errors = active_errors(s.current_errors)
        mode = s.robot_mode
        if mode == f.RobotMode.Reflex:
            errors += [e for e in active_errors(s.last_motion_errors) if e not in errors]
        if mode in (f.RobotMode.Reflex, f.RobotMode.UserStopped):
            errors.append(f"robot_mode: {mode.name}")
        if fault is not None:
            errors.append(fault)
        if self.gripper.error is not None:
            errors.append(f"gripper: {self.gripper.error}")
        reading = ArmReading(
            joint_positions=np.asarray(s.q, dtype=np.float64),
            joint_velocities=np.asarray(s.dq, dtype=np.float64),
            tcp_position=np.asarray(pose.translation, dtype=np.float64),
            tcp_quat=wxyz(pose.quaternion),
            tcp_twist=np.concatenate([np.asarray(twist.linear, dtype=np.float64),
                                      np.asarray(twist.angular, dtype=np.float64)]),
            force=wrench[:3],
            torque=wrench[3:],
            errors=tuple(errors),
        )
        self._last = reading
        return reading

    def _set_cartesian_target(self, position: np.ndarray, quat: np.ndarray) -> None:
        f = self._franky
        with self._lock:
            if self._moving:
                raise MotionError("a blocking move is running; a streamed target would switch franky's "
                                  "control mode under it")
            if not self._tracker_alive():
                self._start_tracker()
                if self._tracker is None:
                    raise FaultError((self._fault or "the impedance controller is not running",))
            pose = self._robot.state.O_T_EE
            c = self._compliance
            pos, q = clamp_to_clip(position, quat, np.asarray(pose.translation, dtype=np.float64),
                                   wxyz(pose.quaternion), c.translational_clip, c.rotational_clip)
            self._tracker.set_target(f.Affine(pos, xyzw(q)))
            self.target = (pos, q)

    def _move_to_cartesian_pose(self, position: np.ndarray, quat: np.ndarray) -> None:
        f = self._franky
        motion = f.CartesianMotion(f.RobotPose(f.Affine(position, xyzw(quat))), f.ReferenceType.Absolute,
                                   relative_dynamics_factor=self.dynamics_factor)
        self._blocking("cartesian", motion)

    def _move_to_joint_positions(self, q: np.ndarray) -> None:
        f = self._franky
        motion = f.JointMotion(q, f.ReferenceType.Absolute, relative_dynamics_factor=self.dynamics_factor)
        self._blocking("joint", motion)

    def _blocking(self, kind: str, motion: Any) -> None:
        """Hand over from the tracker to a planned franky motion and back (torque and position control
        cannot run at once)."""
        f = self._franky
        with self._lock:
            if self._moving:
                raise MotionError("another blocking move is running")
            self._moving, self._stop_requested = True, False
            tracker, self._tracker = self._tracker, None
        try:
            self._end_tracker(tracker)  # outside the lock: state reads go on while the arm comes to rest
            if self._fault is not None:
                raise FaultError((self._fault,))
            if self._stop_requested:
                raise MotionError(f"{kind} move aborted by stop()")
            self._robot.move(motion)
        except f.ControlException as err:
            if self._stop_requested:
                raise MotionError(f"{kind} move aborted by stop()") from err
            self._fault = f"control_exception: {message(err)}"
            raise MotionError(f"{kind} move failed: {message(err)}") from err
        except (f.CommandException, f.NetworkException) as err:
            self._fault = f"{kind} move rejected: {message(err)}"
            raise MotionError(f"{kind} move rejected: {message(err)}") from err
        finally:
            with self._lock:
                self._moving = False
                if self._fault is None:
                    self._start_tracker()

    def _set_compliance(self, compliance: Compliance) -> None:
        with self._lock:
            old, self._compliance = self._compliance, compliance
            if self._moving or not self._tracker_alive():
                return  # applied when the tracker starts
            clips = (compliance.translational_clip, compliance.rotational_clip)
            if (old.translational_clip, old.rotational_clip) != clips:
                target = self.target
                self._start_tracker()  # the error clip is fixed per tracker: a new one takes over seamlessly
                if target is not None and self._tracker is not None:
                    self._set_cartesian_target(*target)
                return
            self._tracker.set_gains(
                translational_stiffness=compliance.translational_stiffness,
                rotational_stiffness=compliance.rotational_stiffness,
                damping=damping(compliance),
                posture_stiffness=compliance.nullspace_stiffness,
            )

    def _clear_errors(self) -> None:
        f = self._franky
        with self._lock:
            if self._moving:
                raise MotionError("a blocking move is running; stop() it first")
            self._tracker_alive()
            try:
                recovered = self._robot.recover_from_errors()
            except (f.CommandException, f.NetworkException, f.ControlException) as err:
                raise FaultError((*self._read().errors, f"error recovery failed: {message(err)}")) from err
            self._fault = None
            self.gripper.clear_error()
            if recovered:
                self._start_tracker()
        remaining = self._read().errors
        if remaining or not recovered:
            raise FaultError(remaining or ("libfranka's automatic error recovery did not succeed",))

    def _stop(self) -> None:
        f = self._franky
        with self._lock:
            if self._moving:
                self._stop_requested = True
                self._robot.stop()  # preempts the blocking move; its thread restarts the tracker
                return
            if self._fault is not None:
                return  # a faulted arm is not moving
            if not self._tracker_alive():
                self._start_tracker()  # seeded with the current pose: holds it
                return
            pose = self._robot.state.O_T_EE
            self._tracker.set_target(f.Affine(pose.translation, pose.quaternion))
            self.target = (np.asarray(pose.translation, dtype=np.float64), wxyz(pose.quaternion))

"""A fake AgileX Piper for tests: the arm's side of the CAN protocol on a python-can `virtual` bus (REFERENCE §E.1).

A thread on its own `can.Bus(interface="virtual", channel=...)` reads the command frames piper_sdk sends (0x150
e-stop/resume, 0x151 mode, 0x152-0x154 end pose, 0x155-0x157 joints, 0x159 gripper, 0x471 enable) and streams
feedback at RATE Hz (0x2A1 status, 0x2A2-0x2A4 end pose, 0x2A5-0x2A7 joints, 0x2A8 gripper, 0x251-0x256 driver speeds)
and at RATE / 4 Hz (0x261-0x266 driver status, byte 5 bit 6 = enabled), so piper_sdk encodes and decodes every frame.

What it models (a stand-in for the firmware, not a dynamics model):
- joints move towards their target at `max_joint_speed` x the 0x151 speed rate; motion_status is 1 until reached;
- the end-pose feedback is piper_sdk's own forward kinematics (`C_PiperForwardKinematics`: the firmware's DH table
  and Euler convention) of the joint positions, so the backend's conversions are checked against the SDK's;
- an end-pose command is solved for a joint target by damped least squares on our MuJoCo Piper (`solve_ik`) from the
  current joints; with no solution inside the joint limits the arm reports arm_status 0x02 (no IK solution) and holds;
- motion frames are obeyed only with all motors enabled, arm_status normal and a 0x151 that selected CAN control with
  a matching move mode (J for joint frames; P or L for end-pose frames, both tracked in joint space);
- 0x150 stop -> arm_status 0x01, motion stops; resume -> arm_status 0 and standby (a new 0x151 is needed);
  `fault(code)` injects an arm_status fault (0x07 collision, ...) that also stops motion until resumed;
- the gripper moves to its commanded stroke at `gripper_speed` once a 0x159 enabled it.
Every command frame received is recorded (`commands()`), so tests can assert exactly what reached the arm.
"""

from __future__ import annotations

import struct
import threading
import time

import can
import mujoco
import numpy as np
from piper_sdk import C_PiperForwardKinematics

from serl_envs.sim.arms.piper import READY_Q, add_piper
from serl_envs.sim.robot import solve_ik

RATE = 200.0  # Hz of the status/pose/joint/gripper feedback
COMMAND_IDS = (0x150, 0x151, 0x152, 0x153, 0x154, 0x155, 0x156, 0x157, 0x159, 0x471)


def _euler_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """R = Rz(rz) Ry(ry) Rx(rx): the Piper's end-pose angles about the fixed base axes."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


class FakePiperArm:
    """Start it before the backend connects (a virtual bus only delivers to handles that already exist)."""

    def __init__(
        self, channel: str, q0: np.ndarray = READY_Q, max_joint_speed: float = 6.0, gripper_speed: float = 0.5,
        gripper_width: float = 0.05, enables: bool = True, driver_speeds: bool = True,
    ) -> None:
        self.channel = channel
        self.q = np.array(q0, dtype=float)
        self.q_target = self.q.copy()
        self.dq = np.zeros(6)
        self.max_joint_speed, self.gripper_speed = max_joint_speed, gripper_speed
        self.gripper, self.gripper_target, self.gripper_effort = gripper_width, gripper_width, 0
        self.gripper_enabled = False
        self.enables, self.driver_speeds = enables, driver_speeds
        self.enabled = [False] * 6
        self.ctrl_mode, self.move_mode, self.speed = 0x00, 0x01, 0
        self.arm_status = 0x00
        self._joint_frames: dict[int, tuple[int, int]] = {}
        self._pose_frames: dict[int, tuple[int, int]] = {}
        self._received: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._fk = C_PiperForwardKinematics(0x01)
        spec = mujoco.MjSpec()
        spec.compiler.degree = False
        self._arm = add_piper(spec, base_pos=(0.0, 0.0, 0.0))
        self._model = spec.compile()
        self._site = self._model.site(self._arm.flange_site).id
        self._dofs = np.array([self._model.joint(n).dofadr[0] for n in self._arm.joint_names])
        self._bus = can.Bus(interface="virtual", channel=channel)
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"fake-piper-{channel}", daemon=True)

    # --- test API -------------------------------------------------------------------------------------------
    def start(self) -> FakePiperArm:
        self._running.set()
        self._thread.start()
        return self

    def close(self) -> None:
        self._running.clear()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._bus.shutdown()

    def commands(self, *ids: int) -> list[tuple[int, bytes]]:
        """Command frames received so far (arbitration id, payload), optionally only these ids."""
        with self._lock:
            return [f for f in self._received if not ids or f[0] in ids]

    def clear_commands(self) -> None:
        with self._lock:
            self._received.clear()

    def fault(self, code: int) -> None:
        with self._lock:
            self.arm_status = code
            self.q_target = self.q.copy()

    def flange_pose(self) -> list[float]:
        """piper_sdk's FK of the current joints: flange x, y, z (mm), rx, ry, rz (deg)."""
        return list(self._fk.CalFK(self.q.tolist())[5])

    # --- the arm's loop -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        period, tick = 1.0 / RATE, 0
        deadline = last_step = time.perf_counter()
        while self._running.is_set():
            deadline += period
            while (remaining := deadline - time.perf_counter()) > 0:
                msg = self._bus.recv(timeout=remaining)
                if msg is not None and msg.arbitration_id in COMMAND_IDS:
                    with self._lock:
                        self._received.append((msg.arbitration_id, bytes(msg.data)))
                        self._handle(msg.arbitration_id, bytes(msg.data))
            now = time.perf_counter()
            with self._lock:  # the motion follows the wall clock, so finite differences hold on a busy machine
                self._step(min(now - last_step, 0.05))
                frames = self._feedback(tick)
            last_step = now
            for arbitration_id, data in frames:
                self._bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False))
            tick += 1
            if time.perf_counter() - deadline > 0.1:  # fell behind (a busy machine): do not try to catch up
                deadline = time.perf_counter()

    def _can_move(self, modes: tuple[int, ...]) -> bool:
        return all(self.enabled) and self.arm_status == 0 and self.ctrl_mode == 0x01 and self.move_mode in modes

    def _handle(self, arbitration_id: int, data: bytes) -> None:
        if arbitration_id == 0x471 and self.enables:
            motor, flag = data[0], data[1]
            for i in range(6) if motor in (7, 0xFF) else [motor - 1]:
                self.enabled[i] = flag == 0x02
        elif arbitration_id == 0x151:
            self.ctrl_mode, self.move_mode, self.speed = data[0], data[1], data[2]
        elif arbitration_id == 0x150:
            if data[0] == 0x01:
                self.arm_status, self.q_target = 0x01, self.q.copy()
            elif data[0] == 0x02:
                self.arm_status, self.ctrl_mode = 0x00, 0x00
        elif arbitration_id in (0x155, 0x156, 0x157):
            self._joint_frames[arbitration_id] = struct.unpack(">ii", data)
            if arbitration_id == 0x157 and len(self._joint_frames) == 3 and self._can_move((0x01,)):
                mdeg = [v for i in (0x155, 0x156, 0x157) for v in self._joint_frames[i]]
                q = np.radians(np.array(mdeg) / 1000.0)
                if np.any(q < self._arm.q_low) or np.any(q > self._arm.q_high):
                    self.arm_status = 0x04  # target exceeds the joint limits
                else:
                    self.q_target = q
        elif arbitration_id in (0x152, 0x153, 0x154):
            self._pose_frames[arbitration_id] = struct.unpack(">ii", data)
            if arbitration_id == 0x154 and len(self._pose_frames) == 3 and self._can_move((0x00, 0x02)):
                x, y, z, rx, ry, rz = [v / 1000.0 for i in (0x152, 0x153, 0x154) for v in self._pose_frames[i]]
                self._solve(np.array([x, y, z]) / 1000.0, np.radians([rx, ry, rz]))
        elif arbitration_id == 0x159:
            angle, effort, code, _ = struct.unpack(">iHBB", data)
            self.gripper_enabled = code in (0x01, 0x03)
            if self.gripper_enabled:
                self.gripper_target, self.gripper_effort = angle / 1e6, effort

    def _solve(self, flange_pos: np.ndarray, euler: np.ndarray) -> None:
        rot = _euler_matrix(*euler) @ np.diag([-1.0, -1.0, 1.0])  # the flange site is the hand frame: pi about z
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.flatten())
        try:
            self.q_target = solve_ik(self._model, self._site, self._dofs, self.q, flange_pos, quat,
                                     self._arm.q_low, self._arm.q_high, iters=300, tol=1e-7)
        except RuntimeError:
            self.arm_status, self.q_target = 0x02, self.q.copy()  # no IK solution

    def _step(self, dt: float) -> None:
        if dt <= 0:
            return
        if self.arm_status != 0 or not all(self.enabled):
            self.q_target = self.q.copy()
        step = self.max_joint_speed * self.speed / 100.0 * dt
        new_q = self.q + np.clip(self.q_target - self.q, -step, step)
        self.dq, self.q = (new_q - self.q) / dt, new_q
        g_step = self.gripper_speed * dt
        self.gripper += float(np.clip(self.gripper_target - self.gripper, -g_step, g_step))

    def _feedback(self, tick: int) -> list[tuple[int, bytes]]:
        moving = int(np.max(np.abs(self.q_target - self.q)) > 1e-9)
        frames = [(0x2A1, struct.pack(">BBBBBBH", self.ctrl_mode, self.arm_status, self.move_mode, 0, moving, 0, 0))]
        pose = [int(round(v * 1000)) for v in self.flange_pose()]
        frames += [(0x2A2 + i, struct.pack(">ii", pose[2 * i], pose[2 * i + 1])) for i in range(3)]
        joints = [int(round(v)) for v in np.degrees(self.q) * 1000]
        frames += [(0x2A5 + i, struct.pack(">ii", joints[2 * i], joints[2 * i + 1])) for i in range(3)]
        status = 0x40 if self.gripper_enabled else 0x00
        effort = min(self.gripper_effort, 32767) if self.gripper_target < self.gripper - 1e-4 else 0
        frames.append((0x2A8, struct.pack(">ihBx", int(round(self.gripper * 1e6)), effort, status)))
        if self.driver_speeds:
            frames += [(0x251 + i, struct.pack(">hhi", int(round(self.dq[i] * 1000)), 0, 0)) for i in range(6)]
        if tick % 4 == 0:
            frames += [(0x261 + i, struct.pack(">HhbBH", 240, 30, 30, 0x40 if self.enabled[i] else 0x00, 0))
                       for i in range(6)]
        return frames

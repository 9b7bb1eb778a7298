"""The MuJoCo twin: the sim foundation's `SimRobot` behind the robot server, run in real time or `--speed` x faster.

`--arm panda|piper` picks the sim arm, built and controlled exactly as in the sim envs (`serl_envs.sim.make.ARMS`),
with its joint limits, gripper width and reach (`REACH`, around where the sim mounts it); poses are in the sim's task
frame, as in the sim envs, so the station defaults of that arm (`station_defaults(task, arm)`) fit it as they are.

A background thread owns the MuJoCo data and steps it tick by tick (TICK of robot time, paced against the wall
clock), so the server sees what a real arm gives it: targets stream in and take effect at the next tick, state
streams out as a snapshot published after each tick. The impedance law and its compliance (including the clip that
caps the contact force) are the sim controller's own. Objects: the sim task's seeded placement, then the station's
fixtures (the board of PegInsert under the station's target pose). Blocking Cartesian moves stream a smooth
interpolation to the target; joint moves are played back kinematically, like a stiff joint-position controller.
With `--force-limit`, a flange force above it faults the arm (a contact reflex) until `clear_errors()`.
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import mujoco
import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.env import IMAGE_KEYS
from serl_envs.real.backends.base import (
    ArmLimits,
    ArmReading,
    BaseGripperServer,
    BaseRobotServer,
    MotionError,
)
from serl_envs.real.backends.piper import WORKSPACE as PIPER_WORKSPACE
from serl_envs.real.config import StationConfig
from serl_envs.real.station import fixture_poses, task_class
from serl_envs.robot import RobotState
from serl_envs.sim.make import ARMS
from serl_envs.sim.robot import SimConfig, SimRobot
from serl_envs.sim.scene import RenderSettings
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat

TICK = 0.01  # s of robot time per loop iteration: 5 physics steps; the latency of a streamed target
# m: the TCP's reach around each arm's base (the Piper's as its hardware backend declares it); the twin's workspace
# is this box around where the sim mounts the arm (`ArmInfo.base_pos`)
REACH = {"panda": ((-0.9, -0.9, -0.05), (0.9, 0.9, 1.2)), "piper": PIPER_WORKSPACE}
REACHED_POS, REACHED_ROT = 0.003, 0.03  # m, rad: a blocking Cartesian move has arrived
MOVE_GRACE = 2.0  # s of robot time a blocking move may take beyond its planned duration
MAX_LAG = 0.25  # s of wall time behind schedule after which the loop stops trying to catch up
RENDER_TIMEOUT = 10.0  # s (wall) to wait for the loop thread to render the cameras


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("twin backend")
    group.add_argument("--speed", type=float, default=1.0, help="robot seconds per wall second (default 1: real time)")
    group.add_argument("--seed", type=int, default=0, help="seeds the sim task's placement of free objects")
    group.add_argument("--image-size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"),
                       help="size of the served camera images")
    group.add_argument("--force-limit", type=float, default=None,
                       help="simulate a contact reflex: a flange force above this (N) faults the arm")


def create(args: argparse.Namespace, station: StationConfig) -> TwinRobot:
    return TwinRobot(args.task, station, arm=args.arm, speed=args.speed, seed=args.seed,
                     image_size=tuple(args.image_size), force_limit=args.force_limit)


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    return quat_mul(quat_from_rotvec(s * rotvec_from_quat(quat_mul(q1, quat_conj(q0)))), q0)


@dataclass
class _Move:
    """A blocking move being played by the loop thread; `done` is set with `error` None on arrival."""

    kind: str  # "cartesian" or "joint"
    start: tuple[np.ndarray, ...]
    goal: tuple[np.ndarray, ...]
    duration: float
    t0: float
    done: threading.Event
    error: str | None = None


class TwinGripper(BaseGripperServer):
    def __init__(self, twin: TwinRobot) -> None:
        super().__init__(twin.sim.max_gripper_width)
        self._twin = twin

    def _open(self) -> None:
        self._twin.set_gripper_width(self.max_width)

    def _close(self) -> None:
        self._twin.set_gripper_width(0.0)

    def _move_to_position(self, width: float) -> None:
        self._twin.set_gripper_width(width)

    def _position(self) -> float:
        return self._twin.snapshot.gripper_width


class TwinRobot(BaseRobotServer):
    name = "twin"

    def __init__(
        self,
        task: str,
        station: StationConfig,
        arm: str = "panda",
        speed: float = 1.0,
        seed: int = 0,
        image_size: tuple[int, int] = (128, 128),
        force_limit: float | None = None,
    ) -> None:
        if arm not in REACH:
            raise ValueError(f"unknown twin arm {arm!r}; available: {sorted(REACH)}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if force_limit is not None and not force_limit > 0:
            raise ValueError(f"force_limit must be > 0 N, got {force_limit}")
        task_cls = task_class(task)
        config = SimConfig(
            control_dt=TICK, image_size=image_size, cameras=IMAGE_KEYS,
            render=RenderSettings(fast=True, max_size=max(640, *image_size)),
        )
        reset = station.reset_pose
        self.arm = arm
        self.sim = SimRobot(ARMS[arm], task_cls.objects, np.array(reset.position), np.array(reset.quat),
                            station.compliance, config, initial_gripper=task_cls.initial_gripper)
        self._speed, self._force_limit = float(speed), force_limit
        self._limits = station.limits
        self._image_size = tuple(image_size)
        m = self.sim.model
        self._q_adr = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.sim.arm.joint_names])
        self._dof_adr = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.sim.arm.joint_names])
        self._place_objects(task_cls, station, seed)
        base, (low, high) = np.asarray(self.sim.arm.base_pos), REACH[arm]
        workspace = (tuple(np.round(base + low, 6).tolist()), tuple(np.round(base + high, 6).tolist()))
        super().__init__(
            ArmLimits(tuple(self.sim.arm.q_low), tuple(self.sim.arm.q_high), *workspace), TwinGripper(self)
        )
        rs = self.sim.state()
        self._target = (rs.tcp_pos, rs.tcp_quat)
        self._gripper_cmd = 1.0 - rs.gripper_width / self.sim.max_gripper_width
        self._errors: tuple[str, ...] = ()
        self._move: _Move | None = None
        self._lock = threading.Lock()
        self._renders: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.snapshot: RobotState = rs
        self._snapshot_time = float(self.sim.data.time)
        self.overruns = 0  # times the loop fell more than MAX_LAG behind the wall clock

    def _place_objects(self, task_cls, station: StationConfig, seed: int) -> None:
        self.sim.reset()
        task = task_cls()
        task.np_random = np.random.default_rng(seed)
        task.reset(self.sim.scene)  # the sim distribution for free objects ...
        for name, (pos, quat) in fixture_poses(task_cls.name, station).items():
            self.sim.scene.place(name, pos, quat)  # ... and the station's fixtures where the station says
        self.sim.settle()

    # --- clock ----------------------------------------------------------------------------------------------
    @property
    def time_scale(self) -> float:
        return self._speed

    def clock(self) -> float:
        return self._snapshot_time

    # --- lifecycle ------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name="twin-physics", daemon=True)
        self._thread.start()

    def _disconnect(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    # --- the loop thread --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        period = TICK / self._speed
        deadline = time.perf_counter()
        while self._running.is_set():
            self._tick()
            self._serve_renders()
            deadline += period
            lag = time.perf_counter() - deadline
            if lag > MAX_LAG:
                deadline, self.overruns = time.perf_counter(), self.overruns + 1
            elif lag < 0:
                time.sleep(-lag)
        self._serve_renders()  # answer what is left with an error rather than leave a caller waiting
        self.sim.close()  # the GL context belongs to this thread

    def _tick(self) -> None:
        sim, d = self.sim, self.sim.data
        with self._lock:
            move = self._move
            if move is not None and move.kind == "joint":
                self._play_joint_move(move)
            elif move is not None:
                s = min((d.time - move.t0) / move.duration, 1.0)
                s = s * s * (3.0 - 2.0 * s)  # smoothstep: no velocity jump at either end
                self._target = (move.start[0] + s * (move.goal[0] - move.start[0]), slerp(move.start[1], move.goal[1], s))
            sim.command(*self._target, self._gripper_cmd)
            sim.wait()  # under the lock too: compliance changes never land mid-step
            rs = sim.state()
            self.snapshot, self._snapshot_time = rs, float(d.time)
            if self._force_limit is not None and not self._errors:
                force = float(np.linalg.norm(rs.wrench[:3]))
                if force > self._force_limit:
                    self._errors = (f"cartesian_reflex: flange force {force:.1f} N above the limit {self._force_limit} N",)
                    self._hold(rs, "aborted by a reflex")
            if self._move is not None and self._move.kind == "cartesian":
                self._check_arrival(self._move, rs)

    def _play_joint_move(self, move: _Move) -> None:
        d = self.sim.data
        s = min((d.time - move.t0) / move.duration, 1.0)
        d.qpos[self._q_adr] = move.start[0] + s * (move.goal[0] - move.start[0])
        d.qvel[self._dof_adr] = 0.0 if s >= 1.0 else (move.goal[0] - move.start[0]) / move.duration
        mujoco.mj_kinematics(self.sim.model, d)
        rs = self.sim.state()
        self._target = (rs.tcp_pos, rs.tcp_quat)  # the impedance follows, so it holds the pose on arrival
        if s >= 1.0:
            self._finish(None)

    def _check_arrival(self, move: _Move, rs: RobotState) -> None:
        t = self.sim.data.time - move.t0
        pos_err = float(np.linalg.norm(rs.tcp_pos - move.goal[0]))
        rot_err = float(np.linalg.norm(rotvec_from_quat(quat_mul(move.goal[1], quat_conj(rs.tcp_quat)))))
        if t >= move.duration and pos_err < REACHED_POS and rot_err < REACHED_ROT:
            self._finish(None)
        elif t > move.duration + MOVE_GRACE:
            self._finish(f"did not reach the pose within {move.duration + MOVE_GRACE:.1f} s: "
                         f"{pos_err * 1000:.1f} mm and {rot_err:.3f} rad away")

    def _finish(self, error: str | None) -> None:
        move, self._move = self._move, None
        if move is not None:
            move.error = error
            move.done.set()

    def _hold(self, rs: RobotState, reason: str) -> None:
        self._target = (rs.tcp_pos.copy(), rs.tcp_quat.copy())
        self._finish(reason if self._move is not None else None)

    def _serve_renders(self) -> None:
        while True:
            try:
                future = self._renders.get_nowait()
            except queue.Empty:
                return
            if not self._running.is_set():
                future.set_exception(RuntimeError("the twin is shutting down"))
                continue
            try:
                future.set_result(self.sim.cameras())
            except Exception as err:  # noqa: BLE001 - a render failure is reported to the caller, not the loop
                future.set_exception(err)

    # --- hooks ----------------------------------------------------------------------------------------------
    def _read(self) -> ArmReading:
        rs = self.snapshot
        return ArmReading(rs.q, rs.dq, rs.tcp_pos, rs.tcp_quat, rs.tcp_twist, rs.wrench[:3], rs.wrench[3:], self._errors)

    def _set_cartesian_target(self, position: np.ndarray, quat: np.ndarray) -> None:
        with self._lock:
            self._finish("interrupted by a streamed target")
            self._target = (position, quat)

    def _move_to_cartesian_pose(self, position: np.ndarray, quat: np.ndarray) -> None:
        rs = self.snapshot
        angle = float(np.linalg.norm(rotvec_from_quat(quat_mul(quat, quat_conj(rs.tcp_quat)))))
        duration = max(float(np.linalg.norm(position - rs.tcp_pos)) / self._limits.move_speed,
                       angle / self._limits.move_angular_speed, TICK)
        self._run_move(_Move("cartesian", (rs.tcp_pos, rs.tcp_quat), (position, quat), duration, 0.0, threading.Event()))

    def _move_to_joint_positions(self, q: np.ndarray) -> None:
        q0 = self.snapshot.q
        duration = max(float(np.max(np.abs(q - q0))) / self._limits.move_angular_speed, TICK)
        self._run_move(_Move("joint", (q0,), (q,), duration, 0.0, threading.Event()))

    def _run_move(self, move: _Move) -> None:
        with self._lock:
            self._finish("interrupted by a new move")
            move.t0 = float(self.sim.data.time)
            self._move = move
        timeout = (move.duration + MOVE_GRACE) / self._speed + 5.0  # wall s; the loop reports misses long before
        if not move.done.wait(timeout=timeout):
            with self._lock:
                self._hold(self.snapshot, "timed out")
            raise MotionError(f"twin {move.kind} move timed out after {timeout:.1f} s (wall clock)")
        if move.error is not None:
            raise MotionError(f"{move.kind} move {move.error}")

    def _set_compliance(self, compliance: Compliance) -> None:
        with self._lock:
            self.sim.set_compliance(compliance)

    def _clear_errors(self) -> None:
        with self._lock:
            self._errors = ()

    def _stop(self) -> None:
        with self._lock:
            self._hold(self.snapshot, "aborted by stop()")

    # --- twin extras ------------------------------------------------------------------------------------------
    def set_gripper_width(self, width: float) -> None:
        with self._lock:
            self._gripper_cmd = 1.0 - width / self.sim.max_gripper_width

    def cameras(self) -> dict[str, np.ndarray]:
        """Rendered by the loop thread (it owns the GL context and the data), between two ticks."""
        self._require_connected()
        future: Future = Future()
        self._renders.put(future)
        return future.result(timeout=RENDER_TIMEOUT)

    @property
    def camera_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {name: (*self._image_size, 3) for name in IMAGE_KEYS}

    @property
    def target(self) -> tuple[np.ndarray, np.ndarray]:
        """The impedance target the twin tracks now (after any server-side clipping)."""
        return self._target

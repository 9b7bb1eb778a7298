"""The interface every robot-server backend implements (twin, franka, piper), with the input checks they share.

A backend subclasses `BaseRobotServer` / `BaseGripperServer` and implements the `_`-prefixed hooks. The public
methods carry SERL's names, validate every input (joint count, NaN/inf, unit quaternions, joint limits, the
arm's workspace) and raise a `ValueError` naming the bad value *before* a hook runs, so nothing invalid ever
reaches hardware. Units are SI; poses are in the arm's base frame; quaternions are (w, x, y, z) everywhere, as in
the rest of this project (`serl_envs/robot.py`).

Threading: the server calls `get_state()`, `set_cartesian_target()` and `gripper.move_to_position()` on its event
loop once per env step, so they must return at once (read a cached state, hand slow work such as a gripper move to
a thread); the blocking `move_to_*` run on worker threads, and `stop()` may arrive from another thread meanwhile.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat

QUAT_ORDER = "wxyz"
QUAT_NORM_TOL = 1e-3  # a quaternion further than this from unit norm is rejected, not normalized


class FaultError(RuntimeError):
    """The arm is in a fault/reflex state and rejects motion until `clear_errors()`."""

    def __init__(self, errors: tuple[str, ...]) -> None:
        self.errors = errors
        super().__init__(f"robot is in a fault state {list(errors)}; call clear_errors() to recover")


class MotionError(RuntimeError):
    """A blocking move did not reach its goal (blocked, timed out or aborted by stop())."""


@dataclass(frozen=True)
class ArmLimits:
    """Hard limits of an arm, checked on every command: joint ranges and a coarse Cartesian workspace box.

    The workspace box is what the arm may ever be asked to reach; a station's safety box (tighter, per task)
    is applied on top of it by the robot server.
    """

    q_low: tuple[float, ...]
    q_high: tuple[float, ...]
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.q_low) != len(self.q_high) or not self.q_low:
            raise ValueError(f"q_low {self.q_low} and q_high {self.q_high} must be non-empty and of equal length")
        if any(lo > hi for lo, hi in zip(self.q_low, self.q_high, strict=True)):
            raise ValueError(f"q_low {self.q_low} must be <= q_high {self.q_high}")
        if any(lo > hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError(f"workspace_low {self.workspace_low} must be <= workspace_high {self.workspace_high}")

    @property
    def n_joints(self) -> int:
        return len(self.q_low)


@dataclass(frozen=True)
class ArmReading:
    """What a backend's `_read()` returns; `get_state()` validates it and adds the gripper and the clock."""

    joint_positions: np.ndarray  # rad (n,)
    joint_velocities: np.ndarray  # rad/s (n,)
    tcp_position: np.ndarray  # m (3,), base frame
    tcp_quat: np.ndarray  # (4,) w, x, y, z
    tcp_twist: np.ndarray  # (6,) vx vy vz wx wy wz, base frame
    force: np.ndarray  # N (3,), measured at the flange, flange frame
    torque: np.ndarray  # Nm (3,)
    errors: tuple[str, ...] = ()  # active faults/reflexes; empty when the arm accepts commands


def as_vector(name: str, value: Any, size: int) -> np.ndarray:
    """`value` as a finite float64 vector of length `size`, or a ValueError naming `name`."""
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be {size} numbers, got {value!r}") from err
    if v.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got shape {v.shape}: {value!r}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} has non-finite entries at {np.flatnonzero(~np.isfinite(v)).tolist()}: {v.tolist()}")
    return v


def clamp_to_clip(
    position: np.ndarray, quat: np.ndarray, current_pos: np.ndarray, current_quat: np.ndarray,
    translational_clip: Any, rotational_clip: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """SERL's per-axis clip of the pose error, applied to a target before it is sent: the position within the
    current one +- `translational_clip` per base axis (m); the rotation from the current orientation to the
    target, as a base-frame rotation vector, within +- `rotational_clip` per axis (rad). Caps the contact force
    at stiffness * clip on arms whose controller does not clip (and the step size on position-controlled ones).
    A target already inside the clip is returned unchanged."""
    t_clip, r_clip = np.asarray(translational_clip, dtype=np.float64), np.asarray(rotational_clip, dtype=np.float64)
    pos = np.clip(position, current_pos - t_clip, current_pos + t_clip)
    rot = rotvec_from_quat(quat_mul(quat, quat_conj(current_quat)))
    clipped = np.clip(rot, -r_clip, r_clip)
    if np.array_equal(clipped, rot):
        return pos, quat
    return pos, quat_mul(quat_from_rotvec(clipped), current_quat)


def as_unit_quat(name: str, value: Any) -> np.ndarray:
    """A (w, x, y, z) quaternion of unit norm (within QUAT_NORM_TOL, then renormalized)."""
    q = as_vector(name, value, 4)
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUAT_NORM_TOL:
        raise ValueError(f"{name} must be a unit quaternion ({QUAT_ORDER}), got norm {norm:.4g}: {q.tolist()}")
    return q / norm


class BaseGripperServer(ABC):
    """A parallel gripper: opening width in metres, 0 = closed, `max_width` = fully open."""

    def __init__(self, max_width: float) -> None:
        if not max_width > 0:
            raise ValueError(f"max_width must be > 0 m, got {max_width}")
        self.max_width = float(max_width)

    def open(self) -> None:
        self._open()

    def close(self) -> None:
        """Close until the fingers are blocked (grasp) or shut."""
        self._close()

    def move_to_position(self, width: float) -> None:
        try:
            w = float(width)
        except (TypeError, ValueError) as err:
            raise ValueError(f"gripper width must be a number in [0, {self.max_width}] m, got {width!r}") from err
        if not (np.isfinite(w) and 0.0 <= w <= self.max_width):
            raise ValueError(f"gripper width must be in [0, {self.max_width}] m, got {width!r}")
        self._move_to_position(w)

    @property
    def position(self) -> float:
        """Current opening in metres."""
        return float(self._position())

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _move_to_position(self, width: float) -> None: ...

    @abstractmethod
    def _position(self) -> float: ...


class BaseRobotServer(ABC):
    """An arm with a Cartesian impedance (or position) controller and its gripper, as the robot server sees it.

    `set_cartesian_target` streams impedance targets (returns at once); `move_to_*` are blocking moves used for
    resets. `stop()` holds the current pose (also what the server's watchdog calls). `clock()` is the robot's
    time in seconds and `time_scale` how much faster than the wall clock it runs (1 for hardware; the twin's
    `--speed`), so clients can pace themselves.
    """

    name: str = "base"
    arm: str  # the arm it drives, by its sim name ("panda", "piper"): /health reports it, the env checks it

    def __init__(self, limits: ArmLimits, gripper: BaseGripperServer) -> None:
        self.limits = limits
        self.gripper = gripper
        self._connected = False

    # --- lifecycle ------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if not self._connected:
            self._connect()
            self._connected = True

    def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._disconnect()

    @property
    def n_joints(self) -> int:
        return self.limits.n_joints

    @property
    def time_scale(self) -> float:
        return 1.0

    def clock(self) -> float:
        return time.monotonic()

    # --- reads ----------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """One validated reading: joint_positions, joint_velocities, cartesian_position (x y z qw qx qy qz),
        cartesian_velocity (6), force, torque, gripper_position (m), errors (list of str), time (robot s)."""
        self._require_connected()
        r = self._read()
        n = self.n_joints
        try:
            state = {
                "joint_positions": as_vector("joint_positions", r.joint_positions, n),
                "joint_velocities": as_vector("joint_velocities", r.joint_velocities, n),
                "cartesian_position": np.concatenate(
                    [as_vector("tcp_position", r.tcp_position, 3), as_vector("tcp_quat", r.tcp_quat, 4)]
                ),
                "cartesian_velocity": as_vector("tcp_twist", r.tcp_twist, 6),
                "force": as_vector("force", r.force, 3),
                "torque": as_vector("torque", r.torque, 3),
                "gripper_position": float(as_vector("gripper_position", [self.gripper.position], 1)[0]),
            }
        except ValueError as err:
            raise RuntimeError(f"{self.name} backend returned an invalid reading: {err}") from err
        state["errors"] = list(r.errors)
        state["time"] = self.clock()
        return state

    def cameras(self) -> dict[str, np.ndarray]:
        """Images served by the robot server itself (the twin's rendered cameras); hardware backends have none:
        real cameras run in the env's process (`serl_envs.real.cameras`), never next to the control loop."""
        return {}

    @property
    def camera_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {}

    # --- commands (validated, then forwarded to the hooks) --------------------------------------------------
    def set_cartesian_target(self, position: Any, orientation_quat: Any) -> None:
        """Stream a new impedance equilibrium pose; returns at once."""
        pos, quat = self._check_pose(position, orientation_quat)
        self._require_ok()
        self._set_cartesian_target(pos, quat)

    def move_to_cartesian_pose(self, position: Any, orientation_quat: Any) -> None:
        """Move to a pose and return when it is reached; raises MotionError if it is not."""
        pos, quat = self._check_pose(position, orientation_quat)
        self._require_ok()
        self._move_to_cartesian_pose(pos, quat)

    def move_to_joint_positions(self, q: Any) -> None:
        """Move to a joint configuration (rad) and return when it is reached; raises MotionError if it is not."""
        self._require_connected()
        qv = as_vector("joint_positions", q, self.n_joints)
        low, high = np.asarray(self.limits.q_low), np.asarray(self.limits.q_high)
        bad = np.flatnonzero((qv < low) | (qv > high))
        if bad.size:
            raise ValueError(
                f"joint_positions outside the joint limits at joints {bad.tolist()}: "
                f"{qv[bad].tolist()} not in [{low[bad].tolist()}, {high[bad].tolist()}]"
            )
        self._require_ok()
        self._move_to_joint_positions(qv)

    def set_compliance(self, compliance: Compliance) -> None:
        if not isinstance(compliance, Compliance):
            raise ValueError(f"compliance must be a serl_envs.compliance.Compliance, got {type(compliance).__name__}")
        self._require_connected()
        self._set_compliance(compliance)

    def clear_errors(self) -> None:
        self._require_connected()
        self._clear_errors()

    def stop(self) -> None:
        """Hold the current pose (aborts a blocking move)."""
        self._require_connected()
        self._stop()

    # --- checks ---------------------------------------------------------------------------------------------
    def _check_pose(self, position: Any, orientation_quat: Any) -> tuple[np.ndarray, np.ndarray]:
        self._require_connected()
        pos = as_vector("position", position, 3)
        quat = as_unit_quat("orientation_quat", orientation_quat)
        low, high = np.asarray(self.limits.workspace_low), np.asarray(self.limits.workspace_high)
        if np.any(pos < low) or np.any(pos > high):
            raise ValueError(
                f"position {pos.tolist()} is outside the {self.name} workspace [{low.tolist()}, {high.tolist()}]"
            )
        return pos, quat

    def _require_connected(self) -> None:
        if not self._connected:
            raise RuntimeError(f"{self.name} backend is not connected; call connect() first")

    def _require_ok(self) -> None:
        errors = self._read().errors
        if errors:
            raise FaultError(tuple(errors))

    # --- hooks a backend implements ---------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def _read(self) -> ArmReading: ...

    @abstractmethod
    def _set_cartesian_target(self, position: np.ndarray, quat: np.ndarray) -> None: ...

    @abstractmethod
    def _move_to_cartesian_pose(self, position: np.ndarray, quat: np.ndarray) -> None: ...

    @abstractmethod
    def _move_to_joint_positions(self, q: np.ndarray) -> None: ...

    @abstractmethod
    def _set_compliance(self, compliance: Compliance) -> None: ...

    @abstractmethod
    def _clear_errors(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...

"""The one action map shared by sim and real: normalized action -> clipped absolute TCP target.

Declared as frozen data (STYLE 4, 6): a task states its action layout, its action scale and its safety box;
`ActionMap` turns an action in [-1, 1]^A into a target pose that never leaves the box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from serl_envs.transforms import quat_from_rotvec_f, quat_mul_f, rotvec_from_quat_f


def clip_f(x: float, low: float, high: float) -> float:
    """np.clip on python floats, with numpy's comparisons (so signed zeros at a bound come out as numpy's)."""
    x = x if x > low else low
    return x if x < high else high


@dataclass(frozen=True)
class ActionScale:
    """Largest commanded speed per unit action, so a task behaves alike at any control rate."""

    linear: float = 0.5  # m/s of target motion at |a| = 1
    angular: float = 1.0  # rad/s of target rotation at |a| = 1


@dataclass(frozen=True)
class SafetyBox:
    """Bounds on the commanded TCP target: position box in the base frame, rotation about the nominal
    orientation as a rotation vector (rad, per axis), so a target outside can never be commanded."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]
    rot_low: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rot_high: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if any(lo > hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(f"SafetyBox low {self.low} must be <= high {self.high} on every axis")
        if any(lo > hi for lo, hi in zip(self.rot_low, self.rot_high, strict=True)):
            raise ValueError(f"SafetyBox rot_low {self.rot_low} must be <= rot_high {self.rot_high}")

    def clip_position(self, pos: np.ndarray) -> np.ndarray:
        return np.clip(pos, self.low, self.high)

    def contains(self, pos: np.ndarray, rotvec: np.ndarray | None = None, atol: float = 1e-9) -> bool:
        ok = bool(np.all(pos >= np.subtract(self.low, atol)) and np.all(pos <= np.add(self.high, atol)))
        if rotvec is not None:
            ok &= bool(np.all(rotvec >= np.subtract(self.rot_low, atol)))
            ok &= bool(np.all(rotvec <= np.add(self.rot_high, atol)))
        return ok


@dataclass(frozen=True)
class ActionLayout:
    """Which action dimensions a task uses: xyz always, then optional rotation (3) and gripper (1)."""

    rotation: bool = False
    gripper: bool = True

    @property
    def dim(self) -> int:
        return 3 + 3 * self.rotation + int(self.gripper)

    @property
    def names(self) -> tuple[str, ...]:
        names = ("dx", "dy", "dz")
        if self.rotation:
            names += ("drx", "dry", "drz")
        if self.gripper:
            names += ("gripper",)
        return names


@dataclass(frozen=True)
class ActionMap:
    """Maps a normalized action to (target position, target quaternion, gripper command).

    target = current TCP pose ⊕ scaled delta: translation added in the base frame, rotation
    left-multiplied as a rotation vector in the base frame (as SERL's real envs). The target is then
    clipped to the safety box. Without rotation actions the target keeps the nominal orientation.
    The gripper action is absolute: -1 fully open, +1 fully closed, mapped to [0, 1].
    """

    layout: ActionLayout
    scale: ActionScale
    box: SafetyBox
    nominal_quat: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0, 0.0]))
    fixed_gripper: float = 0.0  # gripper command used when the layout has no gripper dim

    def validate(self, action: np.ndarray) -> np.ndarray:
        """Return the action as float64 clipped to [-1, 1]; raise ValueError on NaN/inf/wrong shape."""
        return np.array(self._validated(action))

    def _validated(self, action: np.ndarray) -> list[float]:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action must be a numeric array of shape ({self.layout.dim},), got {action!r}") from err
        if a.shape != (self.layout.dim,):
            raise ValueError(
                f"action must have shape ({self.layout.dim},) {self.layout.names}, got shape {a.shape}"
            )
        values = a.tolist()
        if not all(map(math.isfinite, values)):
            bad = [self.layout.names[i] for i in np.flatnonzero(~np.isfinite(a))]
            raise ValueError(f"action has non-finite values in {bad}: {values}")
        return [clip_f(x, -1.0, 1.0) for x in values]

    def __call__(
        self, action: np.ndarray, tcp_pos: np.ndarray, tcp_quat: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray, float]:
        # On python floats: the same IEEE operations, in the same order, as the array form (target = clip(tcp +
        # a * scale * dt)), without the ~20 small numpy calls that cost more than the arithmetic (one env step's
        # Python overhead; bitwise-identical results).
        a = self._validated(action)
        box, step = self.box, self.scale.linear
        moved = zip(tcp_pos.tolist(), a[:3], box.low, box.high, strict=True)
        pos = np.array([clip_f(p + x * step * dt, lo, hi) for p, x, lo, hi in moved])
        if self.layout.rotation:
            turn = self.scale.angular
            delta = quat_from_rotvec_f(a[3] * turn * dt, a[4] * turn * dt, a[5] * turn * dt)
            quat = np.array(self._clip_rotation_f(quat_mul_f(delta, tcp_quat.tolist())))
        else:
            quat = self.nominal_quat.copy()
        gripper = 0.5 * (a[-1] + 1.0) if self.layout.gripper else self.fixed_gripper
        return pos, quat, float(gripper)

    def relative_rotvec(self, quat: np.ndarray) -> np.ndarray:
        """Rotation from the nominal orientation to `quat`, as a base-frame rotation vector."""
        return np.array(self._relative_rotvec_f(quat.tolist()))

    def clip_rotation(self, quat: np.ndarray) -> np.ndarray:
        return np.array(self._clip_rotation_f(quat.tolist()))

    def _relative_rotvec_f(self, quat: tuple[float, ...]) -> tuple[float, float, float]:
        w, x, y, z = self.nominal_quat.tolist()
        return rotvec_from_quat_f(*quat_mul_f(quat, (w, -x, -y, -z)))

    def _clip_rotation_f(self, quat: tuple[float, ...]) -> tuple[float, float, float, float]:
        rv = self._relative_rotvec_f(quat)
        lows, highs = self.box.rot_low, self.box.rot_high
        clipped = [clip_f(v, lo, hi) for v, lo, hi in zip(rv, lows, highs, strict=True)]
        return quat_mul_f(quat_from_rotvec_f(*clipped), self.nominal_quat.tolist())

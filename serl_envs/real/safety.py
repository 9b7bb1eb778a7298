"""Server-side safety: streamed targets are clipped to the station's safety box and velocity limits, and a
watchdog holds the arm when the client goes silent.

The box clip is the env's own (`ActionMap`), so server and env agree on what "inside" means. The velocity limit is
a token bucket per kind (linear, angular): the target may move `max_*_speed` per second of robot time, with up to
`burst_time` of unused budget spent at once (the first step after a pause).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serl_envs.real.config import MotionLimits
from serl_envs.spaces import ActionLayout, ActionMap, ActionScale, SafetyBox
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat

POSITION_AXES, ROTATION_AXES = ("x", "y", "z"), ("rx", "ry", "rz")


@dataclass(frozen=True)
class FilteredTarget:
    position: np.ndarray
    quat: np.ndarray
    clipped: tuple[str, ...]  # what was limited: box axes ("x" ... "rz"), "linear_speed", "angular_speed"


class TargetFilter:
    """Clips each streamed target to the box and the speed limits, relative to the previous target."""

    def __init__(self, box: SafetyBox, nominal_quat: np.ndarray, limits: MotionLimits) -> None:
        self._map = ActionMap(ActionLayout(rotation=True), ActionScale(), box, np.asarray(nominal_quat, float))
        self._limits = limits
        self._lin_cap = limits.max_linear_speed * limits.burst_time
        self._ang_cap = limits.max_angular_speed * limits.burst_time
        self.position: np.ndarray | None = None
        self.quat: np.ndarray | None = None

    def anchor(self, position: np.ndarray, quat: np.ndarray, t: float) -> None:
        """Restart from a pose the arm holds (after a move, a hold, a reset), with full speed budgets."""
        self.position, self.quat = np.array(position, float), np.array(quat, float)
        self._t, self._lin_budget, self._ang_budget = t, self._lin_cap, self._ang_cap

    def __call__(self, position: np.ndarray, quat: np.ndarray, t: float) -> FilteredTarget:
        if self.position is None:
            raise RuntimeError("TargetFilter.anchor() must be called before the first target")
        clipped: list[str] = []
        elapsed = max(t - self._t, 0.0)
        self._t = t
        self._lin_budget = min(self._lin_cap, self._lin_budget + self._limits.max_linear_speed * elapsed)
        self._ang_budget = min(self._ang_cap, self._ang_budget + self._limits.max_angular_speed * elapsed)

        step = position - self.position
        dist = float(np.linalg.norm(step))
        if dist > self._lin_budget:
            position, dist = self.position + step * (self._lin_budget / dist), self._lin_budget
            clipped.append("linear_speed")
        self._lin_budget -= dist
        rot = rotvec_from_quat(quat_mul(quat, quat_conj(self.quat)))
        angle = float(np.linalg.norm(rot))
        if angle > self._ang_budget:
            quat, angle = quat_mul(quat_from_rotvec(rot * (self._ang_budget / angle)), self.quat), self._ang_budget
            clipped.append("angular_speed")
        self._ang_budget -= angle

        boxed = self._map.box.clip_position(position)
        clipped += [a for a, before, after in zip(POSITION_AXES, position, boxed, strict=True) if before != after]
        rv = self._map.relative_rotvec(quat)
        rv_boxed = np.clip(rv, self._map.box.rot_low, self._map.box.rot_high)
        clipped += [a for a, before, after in zip(ROTATION_AXES, rv, rv_boxed, strict=True) if before != after]
        boxed_quat = quat_mul(quat_from_rotvec(rv_boxed), self._map.nominal_quat)
        self.position, self.quat = boxed, boxed_quat
        return FilteredTarget(boxed, boxed_quat, tuple(clipped))


class Watchdog:
    """Calls `on_expire` once when armed and not fed for `timeout` seconds of wall time."""

    def __init__(self, timeout: float, on_expire: Callable[[], None]) -> None:
        self.timeout, self._on_expire = timeout, on_expire
        self._fed = time.monotonic()
        self._armed = False
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def feed(self) -> None:
        with self._lock:
            self._fed, self._armed = time.monotonic(), True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._closed.wait(self.timeout / 10):
            with self._lock:
                expired = self._armed and time.monotonic() - self._fed > self.timeout
                if expired:
                    self._armed = False
            if expired:
                self._on_expire()

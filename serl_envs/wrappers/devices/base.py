"""What every intervention device offers: `read()` once per env step, `events()`, `reset()`, `close()`.

A human device (keyboard, SpaceMouse, gamepad) returns a `DeviceAction` — a twist in the robot base frame and an
optional gripper command, in device units — which `InterventionWrapper` maps onto the env's action layout with
the device's `ActionMapping`. A programmatic device (scripted function, scripted expert) returns a full env action.
`None` means the person is not in control this step and the policy's action runs.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np

Event = Literal["success", "failure", "end"]
EVENTS: tuple[Event, ...] = ("success", "failure", "end")


@dataclass(frozen=True)
class DeviceAction:
    """One step of human command: `twist` (vx, vy, vz, wx, wy, wz) in [-1, 1] in the robot base frame, and
    `gripper` as an absolute command (-1 open ... +1 closed) or None to keep the last executed gripper command."""

    twist: np.ndarray
    gripper: float | None = None

    def __post_init__(self) -> None:
        twist = np.asarray(self.twist, dtype=np.float64)
        if twist.shape != (6,) or not np.all(np.isfinite(twist)):
            raise ValueError(
                f"DeviceAction.twist must be 6 finite numbers (vx vy vz wx wy wz), got {self.twist!r}"
            )
        if self.gripper is not None and not -1.0 <= self.gripper <= 1.0:
            raise ValueError(f"DeviceAction.gripper must be in [-1, 1] or None, got {self.gripper!r}")
        object.__setattr__(self, "twist", np.clip(twist, -1.0, 1.0))


@dataclass(frozen=True)
class ActionMapping:
    """How a device's commands become env actions (per device: a SpaceMouse and a keyboard want different gains)."""

    translation: float = 1.0  # env action units per unit of device translation (1 = the task's full speed)
    rotation: float = 1.0  # env action units per unit of device rotation
    gripper: float = 1.0  # multiplies the gripper command: -1 for an env whose +1 opens the gripper


class EventLatch:
    """Thread-safe record of success/failure/end marks since the last `drain()` (devices read in callbacks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marked: set[Event] = set()

    def mark(self, event: Event) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown device event {event!r}; expected one of {EVENTS}")
        with self._lock:
            self._marked.add(event)

    def drain(self) -> frozenset[Event]:
        with self._lock:
            marked, self._marked = frozenset(self._marked), set()
        return marked


class Device(ABC):
    """Base class of intervention devices; subclasses implement `read` and may override the rest."""

    mapping: ActionMapping = ActionMapping()
    hint: str = ""  # one line telling a person how to drive it

    @abstractmethod
    def read(self) -> DeviceAction | np.ndarray | None:
        """The person's command for this step, or None when they are not in control."""

    def events(self) -> frozenset[Event]:
        """Success/failure/end-of-episode marks made since the last call."""
        return frozenset()

    def reset(self) -> None:  # noqa: B027 - an optional hook
        """Called by the wrapper at every env reset (per-episode state of scripted devices)."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the hardware or listener; safe to call twice."""

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

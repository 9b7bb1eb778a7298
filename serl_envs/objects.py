"""Scene objects as declared data: a task says what it needs, a backend (MuJoCo) builds it.

Tasks never import mujoco (STYLE 5): they declare objects here and read their poses through a `Scene`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mount = Literal["free", "placed", "hand"]


@dataclass(frozen=True)
class BoxPart:
    """One box of an object, in the object's frame."""

    half_size: tuple[float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (0.8, 0.2, 0.2, 1.0)
    friction: float = 1.0


@dataclass(frozen=True)
class SceneObject:
    """A rigid object made of boxes.

    mount: "free" moves under physics (a free joint); "placed" is a fixed fixture that the task places at each
    reset (kinematic); "hand" is held rigidly by the gripper, at `hand_pos` in the TCP frame.
    """

    name: str
    parts: tuple[BoxPart, ...]
    mount: Mount = "free"
    mass: float = 0.1
    hand_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)

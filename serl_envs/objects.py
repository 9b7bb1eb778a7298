"""Scene objects as declared data: a task says what it needs, a backend (MuJoCo) builds it.

Tasks never import mujoco (STYLE 5): they declare objects here and read their poses through a `Scene`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mount = Literal["free", "placed", "hand", "jointed"]
JointKind = Literal["slide", "hinge"]


@dataclass(frozen=True)
class BoxPart:
    """One box of an object, in the object's frame (`quat`, w x y z, turns it: chamfers, funnels)."""

    half_size: tuple[float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (0.8, 0.2, 0.2, 1.0)
    friction: float = 1.0
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Joint:
    """One degree of freedom between an articulated part and its parent: a drawer's slide, a door's hinge.

    The axis is in the parent's frame; the joint starts every episode at 0, which must lie in `range`.
    """

    kind: JointKind
    axis: tuple[float, float, float]
    range: tuple[float, float]  # m (slide) or rad (hinge)
    damping: float = 0.0  # N s/m or N m s/rad
    frictionloss: float = 0.0  # N or N m: dry friction, so the part stays where it is left

    def __post_init__(self) -> None:
        if self.kind not in ("slide", "hinge"):
            raise ValueError(f"Joint.kind must be 'slide' or 'hinge', got {self.kind!r}")
        if not self.range[0] <= 0.0 <= self.range[1]:
            raise ValueError(f"Joint.range must contain the start position 0, got {self.range}")


@dataclass(frozen=True)
class SceneObject:
    """A rigid object made of boxes.

    mount: "free" moves under physics (a free joint); "placed" is a fixed fixture that the task places at each
    reset (kinematic); "hand" is held rigidly by the gripper, at `hand_pos` in the TCP frame; "jointed" is an
    articulated part of the object named `parent` (declared before it), at `offset` in the parent's frame when
    its `joint` is at 0.
    """

    name: str
    parts: tuple[BoxPart, ...]
    mount: Mount = "free"
    mass: float = 0.1
    hand_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    parent: str | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    joint: Joint | None = None

    def __post_init__(self) -> None:
        jointed = self.mount == "jointed"
        if jointed != (self.parent is not None) or jointed != (self.joint is not None):
            raise ValueError(
                f"object {self.name!r}: a 'jointed' object needs a parent and a joint, and only it has them "
                f"(mount={self.mount!r}, parent={self.parent!r}, joint={self.joint!r})"
            )


@dataclass(frozen=True)
class Cable:
    """A flexible cable: a chain of capsule segments joined by two bending hinges each (no twist).

    The first segment hangs from the object named `parent` (declared before it) at `offset` in the parent's
    frame, and the cable starts every episode straight along the parent's +x axis. Each joint is a spring
    back to straight (`stiffness`) with `damping`; the segments do not collide with each other. `plug` (box
    half extents) puts a rigid connector on the free end: something flat a gripper can hold firmly.
    """

    name: str
    parent: str
    segments: int
    length: float  # m, all segments together
    radius: float  # m
    mass: float = 0.05  # kg, all segments together
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    stiffness: float = 0.01  # N m/rad per hinge
    damping: float = 0.002  # N m s/rad per hinge
    rgba: tuple[float, float, float, float] = (0.15, 0.15, 0.15, 1.0)
    friction: float = 1.0  # the segments' sliding friction in all their contacts; 0: frictionless (and cheaper)
    plug: tuple[float, float, float] | None = None
    plug_mass: float = 0.02  # kg
    plug_rgba: tuple[float, float, float, float] = (0.2, 0.2, 0.22, 1.0)

    def __post_init__(self) -> None:
        if self.segments < 2:
            raise ValueError(f"Cable {self.name!r}: segments must be >= 2, got {self.segments}")
        for field in ("length", "radius", "mass"):
            if not getattr(self, field) > 0:
                raise ValueError(f"Cable {self.name!r}: {field} must be > 0, got {getattr(self, field)}")
        if self.length / self.segments <= 2 * self.radius:
            raise ValueError(
                f"Cable {self.name!r}: segments ({self.length / self.segments:.4f} m) must be longer than the "
                f"cable's diameter ({2 * self.radius} m)"
            )

    @property
    def segment_length(self) -> float:
        return self.length / self.segments

    @property
    def mount(self) -> str:
        """How it is attached, like `SceneObject.mount`: a chain hanging from its parent."""
        return "cable"


Declared = SceneObject | Cable  # what a task's `objects` may hold

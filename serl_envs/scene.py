"""The Scene protocol: what a task may ask of the world beyond the robot itself."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Scene(Protocol):
    """Object poses and cameras. The sim scene answers from MuJoCo; a real scene has cameras only."""

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position xyz, quaternion wxyz) of a declared object, in the robot base frame."""
        ...

    def place(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        """Put an object at a pose at reset time (sim only)."""
        ...

    def cable_points(self, name: str) -> np.ndarray:
        """Centres of a declared cable's segments from the end at its parent, then of its plug if it has one."""
        ...

    def joint_position(self, name: str) -> float:
        """Position of a jointed object's joint (m or rad, 0 at reset): how far a drawer is open."""
        ...

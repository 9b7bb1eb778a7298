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

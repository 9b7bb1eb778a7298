"""The Robot protocol: what the env core needs from an arm, sim or real.

`SerlEnv` only talks to this interface, so the in-process MuJoCo robot (`serl_envs.sim.robot.SimRobot`)
and a robot behind a server can stand in for each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RobotState:
    """One reading of the arm, in the robot base frame, SI units.

    tcp_quat is (w, x, y, z). tcp_twist is (vx, vy, vz, wx, wy, wz) in the base frame. wrench is the
    force (N) and torque (Nm) measured at the flange, in the flange frame. gripper_width is the finger
    opening in metres.
    """

    tcp_pos: np.ndarray
    tcp_quat: np.ndarray
    tcp_twist: np.ndarray
    q: np.ndarray
    dq: np.ndarray
    gripper_width: float
    wrench: np.ndarray


@runtime_checkable
class Robot(Protocol):
    """An arm that tracks Cartesian targets at a fixed control period."""

    @property
    def control_dt(self) -> float:
        """Seconds between two commands (one env step)."""
        ...

    @property
    def max_gripper_width(self) -> float: ...

    def reset(self) -> None:
        """Go to the home configuration (for sim: instantly, at rest)."""
        ...

    def settle(self) -> None:
        """Let the world come to rest after the task placed its objects (sim: physics; real: nothing to do)."""
        ...

    def command(self, target_pos: np.ndarray, target_quat: np.ndarray, gripper: float) -> None:
        """Set the impedance target pose and the gripper command in [0 = open, 1 = closed]."""
        ...

    def wait(self) -> None:
        """Advance to the next control tick (sim: physics substeps; real: sleep to the deadline)."""
        ...

    def state(self) -> RobotState: ...

    def cameras(self) -> dict[str, np.ndarray]:
        """Latest uint8 (H, W, 3) image per camera name."""
        ...

    def close(self) -> None: ...

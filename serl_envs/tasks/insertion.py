"""What the insertion tasks share: a board placed at a seeded pose, a part held in the hand, and the target pose a
real station would measure once by hand (TCP seated, heading aligned with the board modulo its symmetry)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.task import Task
from serl_envs.transforms import quat_canonical, quat_from_yaw, wrap_angle, yaw_from_quat


class BoardInsertion(Task):
    """Base of PegInsert and PCBInsert: subclasses set the board's range, symmetry and seated TCP height."""

    board_x: ClassVar[tuple[float, float]]  # board centre x range (m), uniform
    board_y: ClassVar[tuple[float, float]]
    board_yaw: ClassVar[float]  # board yaw uniform in [-board_yaw, board_yaw]
    yaw_period: ClassVar[float]  # the held part's rotational symmetry (pi/2 for a square peg)
    seated_tcp_z: ClassVar[float]  # TCP height above the board when the part is fully inserted
    privileged_dim = 7

    def reset(self, scene: Scene) -> None:
        x, y = self.np_random.uniform((self.board_x[0], self.board_y[0]), (self.board_x[1], self.board_y[1]))
        yaw = self.np_random.uniform(-self.board_yaw, self.board_yaw)
        scene.place("board", np.array([x, y, 0.0]), quat_from_yaw(yaw))

    def proprio(self, rs: RobotState) -> np.ndarray:
        return np.concatenate([rs.tcp_pos, self.relative_quat(rs), rs.tcp_twist, rs.wrench])

    @property
    def proprio_dim(self) -> int:
        return 19

    def privileged(self, scene: Scene) -> np.ndarray:
        pos, quat = scene.object_pose("board")
        return np.concatenate([pos, quat_canonical(quat)])

    def target_pose(self, rs: RobotState, scene: Scene) -> tuple[np.ndarray, float]:
        """TCP position when seated, and the board-aligned heading closest to the current one."""
        pos, quat = scene.object_pose("board")
        heading = yaw_from_quat(rs.tcp_quat)
        yaw = heading + wrap_angle(yaw_from_quat(quat) - heading, self.yaw_period)
        return np.array([pos[0], pos[1], pos[2] + self.seated_tcp_z]), float(yaw)

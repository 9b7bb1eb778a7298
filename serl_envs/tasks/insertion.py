"""What the insertion tasks share: a board placed at a seeded pose, a part held in the hand, and the target pose a
real station would measure once by hand (TCP seated, heading aligned with the board modulo its symmetry)."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.task import Task
from serl_envs.transforms import (
    quat_canonical,
    quat_conj,
    quat_from_yaw,
    quat_mul,
    rotvec_from_quat,
    wrap_angle,
    yaw_from_quat,
    yaw_from_quat_f,
)


class BoardInsertion(Task):
    """Base of PegInsert and PCBInsert: subclasses set the board's range, symmetry and seated TCP height."""

    board_x: ClassVar[tuple[float, float]]  # board centre x range (m), uniform
    board_y: ClassVar[tuple[float, float]]
    board_yaw: ClassVar[float]  # board yaw uniform in [-board_yaw, board_yaw]
    yaw_period: ClassVar[float]  # the held part's rotational symmetry (pi/2 for a square peg)
    seated_tcp_z: ClassVar[float]  # TCP height above the board when the part is fully inserted
    success_tol: ClassVar[float | tuple[float, float, float]]  # per-axis |TCP - seated pose| for success (m)
    yaw_weight: ClassVar[float]  # metres of reward distance per radian of heading error
    reward_sharpness: ClassVar[float]  # dense reward = 1 - tanh(sharpness * distance)
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
        x, y, z, yaw, _ = self._target(rs, scene)
        return np.array([x, y, z]), yaw

    def _target(self, rs: RobotState, scene: Scene) -> tuple[float, float, float, float, float]:
        """`target_pose` on python floats (x, y, z, yaw), plus the TCP heading: success and reward run every step."""
        pos, quat = scene.object_pose("board")
        heading = yaw_from_quat(rs.tcp_quat)
        yaw = heading + wrap_angle(yaw_from_quat_f(*quat.tolist()) - heading, self.yaw_period)
        x, y, z = pos.tolist()
        return x, y, z + self.seated_tcp_z, float(yaw), heading

    def success(self, rs: RobotState, scene: Scene) -> bool:
        x, y, z, _, _ = self._target(rs, scene)
        tol = self.success_tol
        tx, ty, tz = (tol, tol, tol) if isinstance(tol, (int, float)) else tol
        px, py, pz = rs.tcp_pos.tolist()
        return abs(px - x) <= tx and abs(py - y) <= ty and abs(pz - z) <= tz

    def reward(self, rs: RobotState, scene: Scene) -> float:
        """From the TCP pose and the target pose only, so the same reward works on a real robot."""
        if self.reward_type == "sparse":
            return float(self.success(rs, scene))
        x, y, z, yaw, heading = self._target(rs, scene)
        offset = rs.tcp_pos - (x, y, z)
        # sqrt(offset . offset) is how np.linalg.norm computes a vector's norm; the same dot keeps it bitwise.
        distance = math.sqrt(offset.dot(offset)) + self.yaw_weight * abs(yaw - heading)
        return float(1.0 - np.tanh(self.reward_sharpness * distance))

    def heading_correction(self, rs: RobotState, yaw: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Expert helper: (rotation error as a base-frame rotation vector, the normalized rotation action) that turns
        the TCP to pointing down at heading `yaw`."""
        desired = quat_mul(quat_from_yaw(yaw), self.nominal_quat)
        rot_err = rotvec_from_quat(quat_mul(desired, quat_conj(rs.tcp_quat)))
        return rot_err, np.clip(rot_err / (self.scale.angular * dt), -1.0, 1.0)

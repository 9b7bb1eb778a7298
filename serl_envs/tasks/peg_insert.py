"""PegInsert: insert a square peg, held in the hand, into a square hole on a board at a seeded random pose.

| | |
|---|---|
| Action | `Box(-1, 1, (6,))`: dx, dy, dz (x 0.3 m/s), drx, dry, drz (x 1 rad/s, base frame); the gripper stays closed (SERL's `GripperCloseEnv`) |
| State obs | 26-d: tcp_pos (3), tcp_quat rel. to pointing-down (4, w >= 0), tcp twist (6), flange force (3) and torque (3), hole_pos (3), hole_quat (4) |
| Vision obs | `state` = the first 19 (robot only), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | `1 - tanh(10 d)`, d = TCP distance to the inserted pose + 0.02 x yaw error (rad, modulo the square's 90 deg symmetry); from the TCP pose and the target pose only, so it also works on a real robot |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | TCP within 1 cm of the fully inserted pose on every axis: the peg is >= 3 cm deep in a 4 cm hole |
| Start | peg tip 6 cm above the board; board centre uniform in x [0.45, 0.55], y [-0.05, 0.05], yaw [-pi/6, pi/6] |
| Geometry | peg 25 x 25 x 80 mm, 60 mm out of the fingers; hole 28 x 28 mm (1.5 mm clearance per side), 40 mm deep |
| Episode | 100 steps at 20 Hz (5 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.4, 0.6], y [-0.1, 0.1], z [0.055, 0.2] m; roll/pitch +-0.1 rad, yaw +-0.7 rad about pointing down |
| Compliance | K 2000 N/m, D 150, rotational K 150, D 7, error clip 1 cm / 0.1 rad (force capped at 20 N) |
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.tasks.insertion import BoardInsertion

PEG_HALF, PEG_HALF_LEN = 0.0125, 0.04
PEG_OUT = 0.06  # peg tip beyond the TCP (fingertips)
HOLE_HALF = PEG_HALF + 0.0015
BOARD_HALF, BOARD_HEIGHT = 0.06, 0.04
INSERTED_TCP_Z = PEG_OUT  # TCP height when the peg tip touches the hole's bottom (the table)
SUCCESS_TOL = 0.01
BOARD_X, BOARD_Y, BOARD_YAW = (0.45, 0.55), (-0.05, 0.05), np.pi / 6
YAW_WEIGHT = 0.02  # metres of reward distance per radian of yaw error
BOARD_RGBA = (0.25, 0.45, 0.75, 1.0)


def _board_parts() -> tuple[BoxPart, ...]:
    """Four walls around a square hole, standing on the table."""
    z, hz = BOARD_HEIGHT / 2, BOARD_HEIGHT / 2
    side, mid = (BOARD_HALF - HOLE_HALF) / 2, (BOARD_HALF + HOLE_HALF) / 2
    return (
        BoxPart((side, BOARD_HALF, hz), (mid, 0.0, z), BOARD_RGBA),
        BoxPart((side, BOARD_HALF, hz), (-mid, 0.0, z), BOARD_RGBA),
        BoxPart((HOLE_HALF, side, hz), (0.0, mid, z), BOARD_RGBA),
        BoxPart((HOLE_HALF, side, hz), (0.0, -mid, z), BOARD_RGBA),
    )


class PegInsert(BoardInsertion):
    name = "PegInsert"
    layout = ActionLayout(rotation=True, gripper=False)
    scale = ActionScale(linear=0.3, angular=1.0)
    box = SafetyBox(
        low=(0.4, -0.1, INSERTED_TCP_Z - 0.005), high=(0.6, 0.1, 0.2), rot_low=(-0.1, -0.1, -0.7), rot_high=(0.1, 0.1, 0.7)
    )
    compliance = Compliance(
        translational_damping=150.0, translational_clip=(0.01, 0.01, 0.01), rotational_clip=(0.1, 0.1, 0.1)
    )
    objects = (
        SceneObject("peg", (BoxPart((PEG_HALF, PEG_HALF, PEG_HALF_LEN), rgba=(0.9, 0.6, 0.1, 1.0)),), mount="hand",
                    mass=0.05, hand_pos=(0.0, 0.0, PEG_OUT - PEG_HALF_LEN)),
        SceneObject("board", _board_parts(), mount="placed"),
    )
    home_pos = (0.5, 0.0, BOARD_HEIGHT + PEG_OUT + 0.06)
    initial_gripper = 1.0 - 2 * PEG_HALF / 0.08  # fingers resting on the peg's faces
    episode_seconds = 5.0
    board_x, board_y, board_yaw = BOARD_X, BOARD_Y, BOARD_YAW
    yaw_period = np.pi / 2
    success_tol, yaw_weight, reward_sharpness = SUCCESS_TOL, YAW_WEIGHT, 10.0
    seated_tcp_z = INSERTED_TCP_Z

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Align xy and yaw above the hole, then descend straight in."""
        target, yaw = self.target_pose(rs, scene)
        rot_err, rot = self.heading_correction(rs, yaw, dt)
        hover = target + np.array([0.0, 0.0, BOARD_HEIGHT + 0.015])
        if memory.setdefault("phase", "align") == "align":
            goal = hover
            if np.linalg.norm((hover - rs.tcp_pos)[:2]) < 0.002 and np.linalg.norm(rot_err) < 0.02:
                memory["phase"] = "insert"
        else:
            goal = target - np.array([0.0, 0.0, 0.005])
        return np.concatenate([self.move_towards(rs, goal, dt), rot])

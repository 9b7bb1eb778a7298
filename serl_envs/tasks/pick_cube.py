"""PickCube: grasp a 4 cm cube placed at a seeded random spot on the table and lift it.

| | |
|---|---|
| Action | `Box(-1, 1, (4,))`: dx, dy, dz (x 0.6 m/s target speed), gripper (-1 open ... +1 closed, absolute) |
| State obs | 10-d, SERL `PandaPickCube-v0` order: tcp_pos (3), tcp_vel (3), gripper opening (1, m), cube_pos (3) |
| Vision obs | `state` = the first 7 (no cube), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | `0.3 exp(-20 |cube - tcp|) + 0.7 clip(lift / 0.1, 0, 1)` in [0, 1], SERL's shape |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | the cube is lifted by >= 0.1 m above its resting height |
| Start | TCP at (0.45, 0, 0.2) pointing down, gripper open; cube uniform in x [0.3, 0.6], y [-0.2, 0.2] |
| Episode | 100 steps at 20 Hz (5 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.25, 0.7], y [-0.3, 0.3], z [0.005, 0.35] m; orientation fixed |
| Safety box (Piper) | x [0.25, 0.62], y [-0.22, 0.22], z [0.005, 0.16] m: every corner within the Piper's reach pointing down, still over the whole cube area with 2 cm to spare; the lift stops at 0.16 (success needs 0.112); the home (z 0.2) is above it |
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.task import Task

CUBE_HALF = 0.02
LIFT_SUCCESS = 0.1
CUBE_X, CUBE_Y = (0.3, 0.6), (-0.2, 0.2)


class PickCube(Task):
    name = "PickCube"
    layout = ActionLayout(rotation=False, gripper=True)
    scale = ActionScale(linear=0.6)
    box = SafetyBox(low=(0.25, -0.3, 0.005), high=(0.7, 0.3, 0.35))
    arm_boxes = {"piper": SafetyBox(low=(0.25, -0.22, 0.005), high=(0.62, 0.22, 0.16))}
    compliance = Compliance(translational_damping=200.0, translational_clip=(0.03, 0.03, 0.03))
    objects = (SceneObject("cube", (BoxPart((CUBE_HALF,) * 3, rgba=(0.85, 0.15, 0.15, 1.0)),), mount="free", mass=0.1),)
    home_pos = (0.45, 0.0, 0.2)
    episode_seconds = 5.0
    privileged_dim = 3

    def reset(self, scene: Scene) -> None:
        xy = self.np_random.uniform((CUBE_X[0], CUBE_Y[0]), (CUBE_X[1], CUBE_Y[1]))
        scene.place("cube", np.array([xy[0], xy[1], CUBE_HALF]), np.array([1.0, 0.0, 0.0, 0.0]))

    def privileged(self, scene: Scene) -> np.ndarray:
        return scene.object_pose("cube")[0]

    def lift(self, scene: Scene) -> float:
        return float(scene.object_pose("cube")[0][2] - CUBE_HALF)

    def success(self, rs: RobotState, scene: Scene) -> bool:
        return self.lift(scene) >= LIFT_SUCCESS

    def reward(self, rs: RobotState, scene: Scene) -> float:
        if self.reward_type == "sparse":
            return float(self.success(rs, scene))
        cube = scene.object_pose("cube")[0]
        reach = np.exp(-20.0 * np.linalg.norm(cube - rs.tcp_pos))
        return float(0.3 * reach + 0.7 * np.clip(self.lift(scene) / LIFT_SUCCESS, 0.0, 1.0))

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Hover over the cube, descend, close for a few steps, lift."""
        cube = scene.object_pose("cube")[0]
        phase = memory.setdefault("phase", "hover")
        if phase == "hover":
            goal, grip = cube + np.array([0.0, 0.0, 0.08]), -1.0
            if np.linalg.norm((goal - rs.tcp_pos)[:2]) < 0.008 and abs(goal[2] - rs.tcp_pos[2]) < 0.03:
                memory["phase"] = "descend"
        elif phase == "descend":
            goal, grip = cube + np.array([0.0, 0.0, -0.008]), -1.0
            if np.linalg.norm(goal - rs.tcp_pos) < 0.008:
                memory["phase"], memory["closing"] = "grasp", 0
        elif phase == "grasp":
            goal, grip = rs.tcp_pos, 1.0
            memory["closing"] += 1
            if memory["closing"] * dt >= 0.3:
                memory["phase"] = "lift"
        else:
            goal, grip = np.array([cube[0], cube[1], CUBE_HALF + LIFT_SUCCESS + 0.06]), 1.0
        return np.concatenate([self.move_towards(rs, goal, dt), [grip]])

"""BinRelocate: pick a block out of one bin and place it in the other (SERL's object relocation, as a sim analogue).

| | |
|---|---|
| Action | `Box(-1, 1, (4,))`: dx, dy, dz (x 0.5 m/s, SERL's 0.05 m/step at 10 Hz), gripper (-1 open ... +1 closed, absolute) |
| State obs | 16-d: tcp_pos (3), tcp_vel (3), gripper opening (1, m), block_pos (3), source bin centre (3), target bin centre (3) |
| Vision obs | `state` = the first 7 (robot only), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | 1 on success, else `0.2 reach + 0.3 lift + 0.4 carry` in [0, 0.9]: reach = `exp(-10 |block - tcp|)`, lift = `clip(rise / 6 cm, 0, 1)` (1 once over the target bin), carry = `1 - tanh(5 |block_xy - target_xy|)` |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | the block's centre is inside the target bin (within its inner walls, below its rim) and the fingers are open wider than the block (released) |
| Start | TCP at (0.5, 0, 0.2) pointing down, gripper open; source bin centre x U[0.45, 0.55], y U[-0.15, -0.13]; target bin x U[0.45, 0.55], y U[0.13, 0.15]; block uniform within +-4.2 cm (x and y) of the source bin's centre, so the open fingers fit beside it |
| Geometry | bins 18 x 20 cm outside, 5 cm walls (8 mm thick) on an 8 mm floor; block 4 cm cube, 0.1 kg |
| Episode | 120 steps at 20 Hz (6 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.3, 0.7], y [-0.28, 0.28], z [0.01, 0.3] m; orientation fixed |
| Safety box (Piper) | x [0.3, 0.62], y [-0.25, 0.25], z [0.01, 0.14] m: every corner within the Piper's reach pointing down, over both bins' whole areas; the carry height is 0.1; the home (z 0.2) is above it |
| Compliance | K 2000 N/m, D 150, error clip 2 cm (SERL's bin task: K 2000, clips 5-6 mm on a real arm that moves 10 x slower) |

A real bin-relocation station has no block pose: its success needs a learned classifier (SERL used one).
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.task import Task

BIN_HALF = (0.09, 0.10)  # outer half extents (x, y)
WALL_T, WALL_TOP, FLOOR_T = 0.008, 0.05, 0.008
INNER_HALF = (BIN_HALF[0] - WALL_T, BIN_HALF[1] - WALL_T)
BLOCK_HALF = 0.02
REST_Z = FLOOR_T + BLOCK_HALF  # block centre resting on a bin floor
FINGER_ROOM = (0.02, 0.03)  # kept free between the block and the inner walls, so the open fingers fit
SOURCE_X, SOURCE_Y = (0.45, 0.55), (-0.15, -0.13)
TARGET_X, TARGET_Y = (0.45, 0.55), (0.13, 0.15)
LIFT = 0.06  # rise that clears the rims
GRASP_DEPTH = 0.008  # the expert grasps the block this far above the TCP
EXPERT_OPEN = -0.4  # the expert opens the fingers only part way (56 mm on the Panda), clear of the walls
RELEASED_WIDTH = 2 * BLOCK_HALF + 0.005
BIN_RGBA = (0.3, 0.5, 0.35, 1.0)
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def bin_parts(rgba: tuple[float, float, float, float] = BIN_RGBA) -> tuple[BoxPart, ...]:
    """A floor and four walls, standing on the table, centred on the object origin."""
    hx, hy, ht, hz = BIN_HALF[0], BIN_HALF[1], WALL_T / 2, WALL_TOP / 2
    return (
        BoxPart((hx, hy, FLOOR_T / 2), (0.0, 0.0, FLOOR_T / 2), rgba),
        BoxPart((ht, hy, hz), (hx - ht, 0.0, hz), rgba),
        BoxPart((ht, hy, hz), (-hx + ht, 0.0, hz), rgba),
        BoxPart((hx - WALL_T, ht, hz), (0.0, hy - ht, hz), rgba),
        BoxPart((hx - WALL_T, ht, hz), (0.0, -hy + ht, hz), rgba),
    )


def _inside(block: np.ndarray, target_bin: np.ndarray) -> bool:
    """The block's centre is within the bin's inner walls and below its rim."""
    dx, dy = abs(block[0] - target_bin[0]), abs(block[1] - target_bin[1])
    return bool(dx < INNER_HALF[0] and dy < INNER_HALF[1] and block[2] < WALL_TOP)


class BinRelocate(Task):
    name = "BinRelocate"
    layout = ActionLayout(rotation=False, gripper=True)
    scale = ActionScale(linear=0.5)
    box = SafetyBox(low=(0.3, -0.28, 0.01), high=(0.7, 0.28, 0.3))
    arm_boxes = {"piper": SafetyBox(low=(0.3, -0.25, 0.01), high=(0.62, 0.25, 0.14))}
    compliance = Compliance(translational_damping=150.0, translational_clip=(0.02, 0.02, 0.02))
    objects = (
        SceneObject("source_bin", bin_parts(), mount="placed"),
        SceneObject("target_bin", bin_parts((0.25, 0.4, 0.7, 1.0)), mount="placed"),
        SceneObject("block", (BoxPart((BLOCK_HALF,) * 3, rgba=(0.85, 0.15, 0.15, 1.0)),), mount="free", mass=0.1),
    )
    home_pos = (0.5, 0.0, 0.2)
    episode_seconds = 6.0
    privileged_dim = 9

    def reset(self, scene: Scene) -> None:
        source = self.np_random.uniform((SOURCE_X[0], SOURCE_Y[0]), (SOURCE_X[1], SOURCE_Y[1]))
        target = self.np_random.uniform((TARGET_X[0], TARGET_Y[0]), (TARGET_X[1], TARGET_Y[1]))
        spread = np.subtract(INNER_HALF, FINGER_ROOM) - BLOCK_HALF
        block = source + self.np_random.uniform(-spread, spread)
        scene.place("source_bin", np.array([source[0], source[1], 0.0]), IDENTITY)
        scene.place("target_bin", np.array([target[0], target[1], 0.0]), IDENTITY)
        scene.place("block", np.array([block[0], block[1], REST_Z]), IDENTITY)

    def privileged(self, scene: Scene) -> np.ndarray:
        return np.concatenate([scene.object_pose(n)[0] for n in ("block", "source_bin", "target_bin")])

    def success(self, rs: RobotState, scene: Scene) -> bool:
        inside = _inside(scene.object_pose("block")[0], scene.object_pose("target_bin")[0])
        return inside and rs.gripper_width > RELEASED_WIDTH

    def reward(self, rs: RobotState, scene: Scene) -> float:
        block, target = scene.object_pose("block")[0], scene.object_pose("target_bin")[0]
        inside = _inside(block, target)
        success = inside and rs.gripper_width > RELEASED_WIDTH
        if self.reward_type == "sparse" or success:
            return float(success)
        reach = np.exp(-10.0 * np.linalg.norm(block - rs.tcp_pos))
        lift = 1.0 if inside else min(max((block[2] - REST_Z) / LIFT, 0.0), 1.0)
        carry = 1.0 - np.tanh(5.0 * np.linalg.norm(block[:2] - target[:2]))
        return float(0.2 * reach + 0.3 * lift + 0.4 * carry)

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Hover over the block, descend, grasp, lift over the rims, carry over the target bin, lower, release."""
        block, target = scene.object_pose("block")[0], scene.object_pose("target_bin")[0]
        carry_z = WALL_TOP + BLOCK_HALF + 0.03
        phase = memory.setdefault("phase", "hover")
        memory["t"] = memory.get("t", 0.0) + dt  # time in this phase
        grip = 1.0 if phase in ("grasp", "lift", "carry", "lower") else EXPERT_OPEN
        if phase == "hover":
            goal = np.array([block[0], block[1], carry_z])
            done = np.linalg.norm((goal - rs.tcp_pos)[:2]) < 0.006
        elif phase == "descend":
            goal = block - np.array([0.0, 0.0, GRASP_DEPTH])
            done = np.linalg.norm(goal - rs.tcp_pos) < 0.006
        elif phase == "grasp":
            goal = rs.tcp_pos
            done = memory["t"] >= 0.3
        elif phase == "lift":
            goal = np.array([rs.tcp_pos[0], rs.tcp_pos[1], carry_z])
            done = block[2] - BLOCK_HALF > WALL_TOP + 0.01
        elif phase == "carry":
            goal = np.array([target[0], target[1], carry_z])
            done = np.linalg.norm((goal - block)[:2]) < 0.01
        elif phase == "lower":
            goal = np.array([target[0], target[1], REST_Z - GRASP_DEPTH + 0.004])
            done = block[2] < REST_Z + 0.006
        elif phase == "release":
            goal = rs.tcp_pos
            done = memory["t"] >= 0.3
        else:  # rise clear of the block
            goal = np.array([target[0], target[1], carry_z])
            done = False
        if done:
            order = ("hover", "descend", "grasp", "lift", "carry", "lower", "release", "rise")
            memory["phase"], memory["t"] = order[order.index(phase) + 1], 0.0
        return np.concatenate([self.move_towards(rs, goal, dt), [grip]])

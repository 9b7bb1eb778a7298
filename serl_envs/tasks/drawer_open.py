"""DrawerOpen: grasp a drawer's handle and pull the drawer open (an articulated-object task).

| | |
|---|---|
| Action | `Box(-1, 1, (4,))`: dx, dy, dz (x 0.4 m/s), gripper (-1 open ... +1 closed, absolute) |
| State obs | 14-d: tcp_pos (3), tcp_vel (3), gripper opening (1, m), handle_pos (3), cabinet_pos (3), drawer opening (1, m) |
| Vision obs | `state` = the first 7 (robot only), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | `0.3 exp(-20 |handle - tcp|) + 0.7 clip(opening / 15 cm, 0, 1)` in [0, 1] |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | the drawer is open by >= 15 cm (its slide travels 0 ... 20 cm) |
| Start | TCP at (0.5, 0, 0.2) pointing down, gripper open; drawer closed; cabinet to the left of the workspace, its front facing -y (the drawer slides out along -y, seen side-on by the front camera), centre x U[0.45, 0.55], y U[0.18, 0.22] |
| Geometry | cabinet 24 deep x 28 wide x 14 cm high; drawer 0.5 kg on a slide with 10 N s/m damping and 1 N dry friction; handle bar 100 mm long, 12 x 12 mm section, 45 mm in front of the drawer, grasped across its section |
| Episode | 100 steps at 20 Hz (5 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.3, 0.7], y [-0.2, 0.25], z [0.03, 0.3] m; orientation fixed |
| Safety box (Piper) | x [0.3, 0.6], y [-0.2, 0.2], z [0.03, 0.2] m: every corner within the Piper's reach pointing down, over every handle position, closed and pulled |
| Compliance | K 2000 N/m, D 150, error clip 2 cm (pull force capped at 40 N) |

A real drawer station has no drawer state: its success needs a learned classifier or a measured handle pose.
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, Joint, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.task import Task
from serl_envs.transforms import quat_from_yaw, quat_rotate

DEPTH, WIDTH, HEIGHT, PANEL = 0.12, 0.14, 0.14, 0.01  # cabinet half depth (x), half width (y), height, panel thickness
TRAVEL, OPEN_SUCCESS = 0.2, 0.15
STANDOFF, BAR_HALF = 0.045, (0.006, 0.05, 0.006)
HANDLE = np.array([-DEPTH - STANDOFF - BAR_HALF[0], 0.0, HEIGHT - 0.025])  # bar centre in the cabinet frame, closed
CABINET_X, CABINET_Y = (0.45, 0.55), (0.18, 0.22)
CABINET_QUAT = quat_from_yaw(np.pi / 2)  # front (cabinet -x) facing the base -y, in every episode
SLIDE_AXIS = np.array([-1.0, 0.0, 0.0])  # opening direction in the cabinet frame
OPENS_TOWARDS = quat_rotate(CABINET_QUAT, SLIDE_AXIS)  # in the base frame
HANDLE_OFFSET = quat_rotate(CABINET_QUAT, HANDLE)  # handle from the drawer's origin, in the base frame
CABINET_RGBA, DRAWER_RGBA, HANDLE_RGBA = (0.35, 0.45, 0.6, 1.0), (0.9, 0.8, 0.6, 1.0), (0.2, 0.2, 0.22, 1.0)
EXPERT_OPEN = -0.25  # the expert opens the fingers part way (50 mm on the Panda), clear of the drawer front


def cabinet_parts() -> tuple[BoxPart, ...]:
    """Bottom, top, two sides and a back, in the cabinet frame; the front (-x) is open."""
    inner_h = (HEIGHT - 2 * PANEL) / 2
    c = CABINET_RGBA
    return (
        BoxPart((DEPTH, WIDTH, PANEL / 2), (0.0, 0.0, PANEL / 2), c),
        BoxPart((DEPTH, WIDTH, PANEL / 2), (0.0, 0.0, HEIGHT - PANEL / 2), c),
        BoxPart((DEPTH, PANEL / 2, inner_h), (0.0, WIDTH - PANEL / 2, HEIGHT / 2), c),
        BoxPart((DEPTH, PANEL / 2, inner_h), (0.0, -WIDTH + PANEL / 2, HEIGHT / 2), c),
        BoxPart((PANEL / 2, WIDTH - PANEL, inner_h), (DEPTH - PANEL / 2, 0.0, HEIGHT / 2), c),
    )


def drawer_parts() -> tuple[BoxPart, ...]:
    """Front panel with the handle bar on two standoffs, and an open box behind it (cabinet frame, closed)."""
    gap = 0.003
    half_w, box_top = WIDTH - PANEL - gap, 0.08
    box_half_d = DEPTH - PANEL - gap / 2
    box_x = -DEPTH + PANEL + box_half_d  # box from the front panel's back face to just short of the back panel
    wall_h = (box_top - PANEL - gap) / 2
    wall_z = PANEL + gap + wall_h
    d, h = DRAWER_RGBA, HANDLE_RGBA
    return (
        BoxPart((PANEL / 2, half_w, HEIGHT / 2 - PANEL - gap), (-DEPTH + PANEL / 2, 0.0, HEIGHT / 2), d),
        BoxPart((box_half_d, half_w, PANEL / 2), (box_x, 0.0, PANEL + gap + PANEL / 2), d),
        BoxPart((box_half_d, PANEL / 2, wall_h), (box_x, half_w - PANEL / 2, wall_z), d),
        BoxPart((box_half_d, PANEL / 2, wall_h), (box_x, -half_w + PANEL / 2, wall_z), d),
        BoxPart((PANEL / 2, half_w, wall_h), (box_x + box_half_d - PANEL / 2, 0.0, wall_z), d),
        BoxPart(BAR_HALF, tuple(HANDLE), h),
        BoxPart((STANDOFF / 2, 0.006, 0.006), (-DEPTH - STANDOFF / 2, 0.044, HANDLE[2]), h),
        BoxPart((STANDOFF / 2, 0.006, 0.006), (-DEPTH - STANDOFF / 2, -0.044, HANDLE[2]), h),
    )


class DrawerOpen(Task):
    name = "DrawerOpen"
    layout = ActionLayout(rotation=False, gripper=True)
    scale = ActionScale(linear=0.4)
    box = SafetyBox(low=(0.3, -0.2, 0.03), high=(0.7, 0.25, 0.3))
    arm_boxes = {"piper": SafetyBox(low=(0.3, -0.2, 0.03), high=(0.6, 0.2, 0.2))}
    compliance = Compliance(translational_damping=150.0, translational_clip=(0.02, 0.02, 0.02))
    objects = (
        SceneObject("cabinet", cabinet_parts(), mount="placed"),
        SceneObject(
            "drawer", drawer_parts(), mount="jointed", mass=0.5, parent="cabinet",
            joint=Joint("slide", axis=tuple(SLIDE_AXIS), range=(0.0, TRAVEL), damping=10.0, frictionloss=1.0),
        ),
    )
    home_pos = (0.5, 0.0, 0.2)
    episode_seconds = 5.0
    privileged_dim = 7

    def reset(self, scene: Scene) -> None:
        x, y = self.np_random.uniform((CABINET_X[0], CABINET_Y[0]), (CABINET_X[1], CABINET_Y[1]))
        scene.place("cabinet", np.array([x, y, 0.0]), CABINET_QUAT)

    def handle_pos(self, scene: Scene) -> np.ndarray:
        return scene.object_pose("drawer")[0] + HANDLE_OFFSET

    def privileged(self, scene: Scene) -> np.ndarray:
        opening = scene.joint_position("drawer")
        return np.concatenate([self.handle_pos(scene), scene.object_pose("cabinet")[0], [opening]])

    def success(self, rs: RobotState, scene: Scene) -> bool:
        return scene.joint_position("drawer") >= OPEN_SUCCESS

    def reward(self, rs: RobotState, scene: Scene) -> float:
        if self.reward_type == "sparse":
            return float(self.success(rs, scene))
        reach = np.exp(-20.0 * np.linalg.norm(self.handle_pos(scene) - rs.tcp_pos))
        return float(0.3 * reach + 0.7 * np.clip(scene.joint_position("drawer") / OPEN_SUCCESS, 0.0, 1.0))

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Hover over the handle, descend around it, close, pull straight back past the success distance."""
        handle = self.handle_pos(scene)
        phase = memory.setdefault("phase", "hover")
        memory["t"] = memory.get("t", 0.0) + dt  # time in this phase
        if phase == "hover":
            goal, grip = handle + np.array([0.0, 0.0, 0.05]), EXPERT_OPEN
            done = np.linalg.norm((goal - rs.tcp_pos)[:2]) < 0.004
        elif phase == "descend":
            goal, grip = handle, EXPERT_OPEN
            done = np.linalg.norm(goal - rs.tcp_pos) < 0.004
        elif phase == "grasp":
            goal, grip = handle, 1.0
            done = memory["t"] >= 0.3
        else:  # pull along the slide until past the success distance, then hold
            remaining = max(OPEN_SUCCESS + 0.02 - scene.joint_position("drawer"), 0.0)
            goal, grip, done = handle + remaining * OPENS_TOWARDS, 1.0, False
        if done:
            order = ("hover", "descend", "grasp", "pull")
            memory["phase"], memory["t"] = order[order.index(phase) + 1], 0.0
        return np.concatenate([self.move_towards(rs, goal, dt), [grip]])

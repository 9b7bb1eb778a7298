"""PCBInsert: push a two-pin component, held in the hand, into a header on a circuit board (SERL's PCB insertion).

The tightest-tolerance contact task: each square pin has 0.3 mm of clearance per side in its hole (0.6 mm in
all), so the pins only go in with the xy error under 0.3 mm and the yaw error under about 0.02 rad.

| | |
|---|---|
| Action | `Box(-1, 1, (6,))`: dx, dy, dz (x 0.2 m/s, SERL's 0.02 m/step at 10 Hz), drx, dry, drz (x 1 rad/s, base frame); the gripper stays closed |
| State obs | 26-d: tcp_pos (3), tcp_quat rel. to pointing-down (4, w >= 0), tcp twist (6), flange force (3) and torque (3), header_pos (3), header_quat (4) |
| Vision obs | `state` = the first 19 (robot only), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | `1 - tanh(20 d)`, d = TCP distance to the seated pose + 0.02 x yaw error (rad, modulo the part's 180 deg symmetry); from the TCP pose and the target pose only, so it also works on a real robot |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | TCP within 3 mm (xy) and 1 mm (z) of the seated pose, SERL's PCB thresholds: the pins are >= 7 of their 8 mm deep |
| Start | pin tips 32 mm above the header; board centre uniform in x [0.45, 0.55], y [-0.05, 0.05], yaw [-pi/9, pi/9] (SERL's PCB randomisation) |
| Geometry | component body 40 x 16 x 14 mm, two 3 x 3 mm pins 8 mm long, 24 mm apart; header 44 x 16 x 10 mm with two 3.6 x 3.6 mm holes on a 12 x 8 cm, 2 mm board (with a few chips, for looks) |
| Episode | 100 steps at 20 Hz (5 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.4, 0.6], y [-0.1, 0.1], z [seated - 3 mm, seated + 10 cm]; roll/pitch +-0.05 rad, yaw +-0.55 rad about pointing down |
| Compliance | SERL's PCB parameters: K 3000 N/m, D 180, rotational K 150, D 7; error clips 2.5 / 2 / 3 mm (x/y/z) and 0.025 / 0.007 / 0.01 rad (caps of 6-9 N and 1-3.8 Nm; SERL clips each sign apart, here symmetric) |
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.tasks.insertion import BoardInsertion

PIN_HALF, PIN_LEN, PIN_SPACING = 0.0015, 0.008, 0.024
CLEARANCE = 0.0003  # per side
HOLE_HALF = PIN_HALF + CLEARANCE
BODY_HALF = (0.02, 0.008, 0.007)
BODY_BELOW_TIPS = 0.004  # the component's underside is this far beyond the fingertips (the TCP)
PLATE_HALF, PLATE_T = (0.06, 0.04), 0.002
HEADER_HALF, HEADER_H = (0.022, 0.008), 0.01
HEADER_TOP = PLATE_T + HEADER_H
SEATED_TCP_Z = HEADER_TOP + BODY_BELOW_TIPS  # TCP height with the component's underside on the header
SUCCESS_TOL = (0.003, 0.003, 0.001)
BOARD_X, BOARD_Y, BOARD_YAW = (0.45, 0.55), (-0.05, 0.05), np.pi / 9
EXPERT_DESCENT = 0.15  # largest downward action of the expert (3 cm/s)
YAW_WEIGHT = 0.02  # metres of reward distance per radian of yaw error
# Decoration, clear of the header and the fingers: (half size, x, y) of a few chips on the board.
CHIPS = (((0.012, 0.008, 0.0015), -0.038, 0.024), ((0.008, 0.008, 0.0015), 0.04, -0.022),
         ((0.004, 0.002, 0.0015), 0.035, 0.028), ((0.004, 0.002, 0.0015), -0.03, -0.028))
GREEN, BLACK, TIN = (0.1, 0.45, 0.2, 1.0), (0.12, 0.12, 0.13, 1.0), (0.8, 0.8, 0.75, 1.0)


def component_parts() -> tuple[BoxPart, ...]:
    """Body between the fingers and two pins beyond it, in the TCP frame (z points away from the hand)."""
    body_z = BODY_BELOW_TIPS - BODY_HALF[2]
    pin_z = BODY_BELOW_TIPS + PIN_LEN / 2
    return (
        BoxPart(BODY_HALF, (0.0, 0.0, body_z), BLACK),
        BoxPart((PIN_HALF, PIN_HALF, PIN_LEN / 2), (PIN_SPACING / 2, 0.0, pin_z), TIN),
        BoxPart((PIN_HALF, PIN_HALF, PIN_LEN / 2), (-PIN_SPACING / 2, 0.0, pin_z), TIN),
    )


def board_parts() -> tuple[BoxPart, ...]:
    """A thin board with a few chips and a header with two through holes, built from boxes around the holes."""
    hx, hy, s, h = HEADER_HALF[0], HEADER_HALF[1], PIN_SPACING / 2, HOLE_HALF
    z, hz = PLATE_T + HEADER_H / 2, HEADER_H / 2
    strip = (hy - h) / 2
    outer = (hx - s - h) / 2
    chips = tuple(BoxPart(half, (x, y, PLATE_T + half[2]), BLACK) for half, x, y in CHIPS)
    return chips + (
        BoxPart((*PLATE_HALF, PLATE_T / 2), (0.0, 0.0, PLATE_T / 2), GREEN),
        BoxPart((hx, strip, hz), (0.0, h + strip, z), BLACK),
        BoxPart((hx, strip, hz), (0.0, -h - strip, z), BLACK),
        BoxPart((s - h, h, hz), (0.0, 0.0, z), BLACK),
        BoxPart((outer, h, hz), (s + h + outer, 0.0, z), BLACK),
        BoxPart((outer, h, hz), (-s - h - outer, 0.0, z), BLACK),
    )


class PCBInsert(BoardInsertion):
    name = "PCBInsert"
    layout = ActionLayout(rotation=True, gripper=False)
    scale = ActionScale(linear=0.2, angular=1.0)
    box = SafetyBox(
        low=(0.4, -0.1, SEATED_TCP_Z - 0.003), high=(0.6, 0.1, SEATED_TCP_Z + 0.1),
        rot_low=(-0.05, -0.05, -0.55), rot_high=(0.05, 0.05, 0.55),
    )
    compliance = Compliance(
        translational_stiffness=3000.0, translational_damping=180.0, rotational_stiffness=150.0,
        rotational_damping=7.0, translational_clip=(0.0025, 0.002, 0.003), rotational_clip=(0.025, 0.007, 0.01),
    )
    objects = (
        SceneObject("component", component_parts(), mount="hand", mass=0.02),
        SceneObject("board", board_parts(), mount="placed"),
    )
    home_pos = (0.5, 0.0, SEATED_TCP_Z + 0.04)
    initial_gripper = 1.0 - 2 * BODY_HALF[1] / 0.08  # fingers resting on the body's faces
    episode_seconds = 5.0
    board_x, board_y, board_yaw = BOARD_X, BOARD_Y, BOARD_YAW
    yaw_period = np.pi
    success_tol, yaw_weight, reward_sharpness = SUCCESS_TOL, YAW_WEIGHT, 20.0
    seated_tcp_z = SEATED_TCP_Z

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Align xy and yaw with the pins just above the holes, then press straight down."""
        target, yaw = self.target_pose(rs, scene)
        rot_err, rot = self.heading_correction(rs, yaw, dt)
        hover = target + np.array([0.0, 0.0, PIN_LEN + 0.003])
        if memory.setdefault("phase", "align") == "align":
            goal = hover
            aligned = np.linalg.norm((hover - rs.tcp_pos)[:2]) < 0.0001 and np.linalg.norm(rot_err) < 0.004
            if aligned and abs(hover[2] - rs.tcp_pos[2]) < 0.002:
                memory["phase"] = "insert"
        else:
            goal = target - np.array([0.0, 0.0, 0.003])
        move = self.move_towards(rs, goal, dt)
        move[2] = max(move[2], -EXPERT_DESCENT)  # slow: a fast drop drags the pins sideways (arm inertia coupling)
        return np.concatenate([move, rot])

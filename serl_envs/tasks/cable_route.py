"""CableRoute: pick up a cable clamped to the table by the plug on its free end and route it into a clip (SERL's
cable routing, as a sim analogue).

| | |
|---|---|
| Action | `Box(-1, 1, (4,))`: dx, dy, dz (x 0.5 m/s, SERL's 0.05 m/step at 10 Hz), gripper (-1 open ... +1 closed, absolute) |
| State obs | 56-d: tcp_pos (3), tcp_vel (3), gripper opening (1, m), clip_pos (3), clip_quat (4), clamp_pos (3), cable points (13 x 3: the 12 segment centres from the clamp, then the plug's centre) |
| Vision obs | `state` = the first 7 (robot only), `front`, `wrist`: uint8 (128, 128, 3) |
| Reward (dense) | 1 on success, else `0.3 reach + 0.6 route` in [0, 0.9]: reach = `exp(-20 |plug - tcp|)`, route = `1 - tanh(10 d)`, d = distance from the bottom of the slot to the nearest cable point |
| Reward (sparse) | 1 on success else 0; the episode then terminates |
| Success | the cable passes through the clip: a segment centre lies in the slot (between the posts, within their length, below their tops) and the clamp end and the plug lie on opposite sides of the clip; holding the plug or not |
| Start | TCP at (0.45, 0, 0.15) pointing down, gripper open; clamp x U[0.64, 0.68], y U[-0.04, 0.04], the cable lying straight from it towards the robot (heading pi + U[-0.1, 0.1]); clip U[12, 16] cm along the cable from the clamp and U[5, 8] cm to a random side of it, its slot pointing away from the clamp |
| Geometry | cable 30 cm, 12 mm thick, 60 g, frictionless (so cheap to simulate): 12 capsule segments with two spring hinges each (bending, no twist), and a 30 x 20 x 12 mm plug; clip slot 18 mm wide, 24 mm long, 30 mm deep, under a 45 deg funnel |
| Episode | 100 steps at 20 Hz (5 s); physics 2 ms; truncated by the TimeLimit only |
| Safety box | x [0.3, 0.72], y [-0.25, 0.25], z [0.002, 0.25] m; orientation fixed |
| Safety box (Piper) | x [0.3, 0.55], y [-0.25, 0.25], z [0.002, 0.2] m: every corner within the Piper's reach pointing down; the plug never goes beyond x 0.45 (it stays on a 31 cm sphere about the clamp, on the robot's side) |
| Compliance | K 2000 N/m, D 150, error clip 2 cm (SERL's cable task: K 2000, clips 5 mm on a real arm that moves 10 x slower) |

A real cable-routing station has no cable state: its success needs a learned classifier (SERL used one).
"""

from __future__ import annotations

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import BoxPart, Cable, SceneObject
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.task import Task
from serl_envs.transforms import quat_canonical, quat_from_yaw, wrap_angle, yaw_from_quat

SEGMENTS, LENGTH, RADIUS = 12, 0.3, 0.006
PLUG_HALF = (0.015, 0.01, RADIUS)  # the connector on the free end, held by the gripper
CLAMP_HALF = (0.015, 0.025, 0.011)
GAP, POST_HALF, BASE_T = 0.018, (0.012, 0.006, 0.015), 0.004
POST_TOP = BASE_T + 2 * POST_HALF[2]
FUNNEL, CLIP_FRICTION = 0.016, 0.3  # funnel plate length; smooth plastic
SLOT_CENTRE = np.array([0.0, 0.0, BASE_T + RADIUS])  # a cable resting in the slot, in the clip's frame
CLAMP_X, CLAMP_Y, HEADING_JITTER = (0.64, 0.68), (-0.04, 0.04), 0.1
CLIP_ALONG, CLIP_SIDE = (0.12, 0.16), (0.05, 0.08)
GRASP_Z = 0.002  # the expert grasps the plug (12 mm tall) with the fingertips this high
STRAIGHT_REACH = LENGTH + PLUG_HALF[0] - RADIUS  # clamp to plug centre along the straight cable (the plug overlaps
# the last segment's end by a radius)
RAISED, ARC_STEP = 0.45, 0.12  # elevation (rad) of the raised cable about the clamp; largest arc step per action
ORANGE, GREY = (0.95, 0.45, 0.1, 1.0), (0.3, 0.3, 0.32, 1.0)


def heading(v: np.ndarray) -> float:
    """Yaw of a vector's horizontal part."""
    return float(np.arctan2(v[1], v[0]))


def clip_parts() -> tuple[BoxPart, ...]:
    """A base plate and two posts forming a slot along the clip's x axis, with a funnel on top: smooth plates
    sloping out at 45 deg guide a cable that lands within 2 cm of the slot into it."""
    post_y, post_z = GAP / 2 + POST_HALF[1], BASE_T + POST_HALF[2]
    half_len, t, tilt = FUNNEL / 2, 0.002, np.pi / 4
    parts = [BoxPart((0.03, 0.03, BASE_T / 2), (0.0, 0.0, BASE_T / 2), GREY)]
    for side in (1.0, -1.0):
        slope = np.array([0.0, side * np.sin(tilt), np.cos(tilt)])  # up the funnel, away from the slot
        normal = np.array([0.0, side * np.cos(tilt), -np.sin(tilt)])  # out of the funnel's inner face
        centre = np.array([0.0, side * GAP / 2, POST_TOP - 0.003]) + half_len * slope + t * normal
        quat = (np.cos(tilt / 2), -side * np.sin(tilt / 2), 0.0, 0.0)  # about x, z axis onto `slope`
        parts.append(BoxPart(POST_HALF, (0.0, side * post_y, post_z), GREY, friction=CLIP_FRICTION))
        parts.append(BoxPart((POST_HALF[0], t, half_len), tuple(centre), GREY, CLIP_FRICTION, quat))
    return tuple(parts)


class CableRoute(Task):
    name = "CableRoute"
    layout = ActionLayout(rotation=False, gripper=True)
    scale = ActionScale(linear=0.5)
    box = SafetyBox(low=(0.3, -0.25, GRASP_Z), high=(0.72, 0.25, 0.25))
    arm_boxes = {"piper": SafetyBox(low=(0.3, -0.25, GRASP_Z), high=(0.55, 0.25, 0.2))}
    compliance = Compliance(translational_damping=150.0, translational_clip=(0.02, 0.02, 0.02))
    objects = (
        SceneObject("clamp", (BoxPart(CLAMP_HALF, (0.0, 0.0, CLAMP_HALF[2]), GREY),), mount="placed"),
        Cable("cable", parent="clamp", segments=SEGMENTS, length=LENGTH, radius=RADIUS, mass=0.06,
              offset=(0.0, 0.0, RADIUS), stiffness=0.003, damping=0.001, friction=0.0, rgba=ORANGE, plug=PLUG_HALF),
        SceneObject("clip", clip_parts(), mount="placed"),
    )
    home_pos = (0.45, 0.0, 0.15)
    episode_seconds = 5.0
    privileged_dim = 10 + 3 * (SEGMENTS + 1)

    def reset(self, scene: Scene) -> None:
        clamp = np.array([*self.np_random.uniform((CLAMP_X[0], CLAMP_Y[0]), (CLAMP_X[1], CLAMP_Y[1])), 0.0])
        yaw = np.pi + self.np_random.uniform(-HEADING_JITTER, HEADING_JITTER)
        along = self.np_random.uniform(*CLIP_ALONG)
        side = self.np_random.uniform(*CLIP_SIDE) * self.np_random.choice([-1.0, 1.0])
        u = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        v = np.array([-u[1], u[0], 0.0])
        clip = clamp + along * u + side * v
        scene.place("clamp", clamp, quat_from_yaw(yaw))
        scene.place("clip", clip, quat_from_yaw(heading(clip - clamp)))

    def privileged(self, scene: Scene) -> np.ndarray:
        clip, quat = scene.object_pose("clip")
        return np.concatenate([clip, quat_canonical(quat), scene.object_pose("clamp")[0], scene.cable_points("cable").ravel()])

    def in_clip_frame(self, points: np.ndarray, scene: Scene) -> np.ndarray:
        """(N, 3) points in the clip's frame: x along the slot (away from the clamp), z up (the clip is only
        ever turned about z)."""
        clip, quat = scene.object_pose("clip")
        c, s = np.cos(yaw_from_quat(quat)), np.sin(yaw_from_quat(quat))
        d = points - clip
        return np.column_stack([c * d[:, 0] + s * d[:, 1], c * d[:, 1] - s * d[:, 0], d[:, 2]])

    def routed(self, local: np.ndarray) -> bool:
        """Whether the cable, as points in the clip's frame, passes through the slot."""
        segments = local[:SEGMENTS]
        in_slot = (np.abs(segments[:, 0]) < POST_HALF[0]) & (np.abs(segments[:, 1]) < GAP / 2) & (segments[:, 2] < POST_TOP)
        return bool(in_slot.any() and local[0, 0] < -POST_HALF[0] and local[-1, 0] > POST_HALF[0])

    def success(self, rs: RobotState, scene: Scene) -> bool:
        return self.routed(self.in_clip_frame(scene.cable_points("cable"), scene))

    def reward(self, rs: RobotState, scene: Scene) -> float:
        points = scene.cable_points("cable")
        local = self.in_clip_frame(points, scene)
        success = self.routed(local)
        if self.reward_type == "sparse" or success:
            return float(success)
        reach = np.exp(-20.0 * np.linalg.norm(points[-1] - rs.tcp_pos))
        route = 1.0 - np.tanh(10.0 * np.sqrt(((local - SLOT_CENTRE) ** 2).sum(axis=1).min()))
        return float(0.3 * reach + 0.6 * route)

    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """Grasp the plug, then keep the cable taut (plug on a sphere about the clamp, so the cable is a straight
        line): raise it, swing it over the clamp-clip line, lower it so it drops into the slot."""
        points = scene.cable_points("cable")
        anchor = scene.object_pose("clamp")[0] + np.array([0.0, 0.0, RADIUS])
        clip = scene.object_pose("clip")[0]
        rel = points[-1] - anchor  # steer the plug, not the TCP: the plug may sit off-centre in the fingers
        azimuth, elevation = heading(rel), np.arcsin(np.clip(rel[2] / STRAIGHT_REACH, -1.0, 1.0))
        phase = memory.setdefault("phase", "hover")
        memory["t"] = memory.get("t", 0.0) + dt  # time in this phase
        grip = -1.0 if phase in ("hover", "descend") else 1.0
        if phase == "hover":
            goal = points[-1] + np.array([0.0, 0.0, 0.05])
            done = np.linalg.norm((goal - rs.tcp_pos)[:2]) < 0.004
        elif phase == "descend":
            goal = np.array([points[-1][0], points[-1][1], GRASP_Z])
            done = np.linalg.norm(goal - rs.tcp_pos) < 0.003
        elif phase == "grasp":
            goal = rs.tcp_pos
            done = memory["t"] >= 0.3
        else:
            targets = {
                "raise": (azimuth, RAISED),
                "swing": (heading(clip - anchor), RAISED),
                "lay": (heading(clip - anchor), 0.0),  # plug on the table, level with the clamp
            }
            error = wrap_angle(np.array(targets[phase]) - (azimuth, elevation))
            a, e = np.array([azimuth, elevation]) + np.clip(error, -ARC_STEP, ARC_STEP)
            plug = anchor + STRAIGHT_REACH * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
            goal = rs.tcp_pos + plug - points[-1]
            done = phase != "lay" and np.all(np.abs(error) < 0.02)
        if done:
            order = ("hover", "descend", "grasp", "raise", "swing", "lay")
            memory["phase"], memory["t"] = order[order.index(phase) + 1], 0.0
        return np.concatenate([self.move_towards(rs, goal, dt), [grip]])

"""What every procedural arm builder provides to the scene and the sim robot, and the parts arms share.

The parts (modified-DH link frames, capsule links, a two-finger parallel gripper, a wrist camera) are built from
published numbers only: each arm module declares its constants and composes these.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from serl_envs.transforms import quat_mul

# Collision groups: arm links never collide with each other (their capsules overlap at the joints), but do
# collide with the world and with objects.
ARM_CONTYPE, ARM_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3


@dataclass(frozen=True)
class ArmInfo:
    """Names and constants of an arm added to an MjSpec, used to bind ids after compiling.

    The poses and twists the sim robot reports (RobotState) are in the world frame, which is the task's frame:
    the frame the tasks' safety boxes, home poses and objects are written in. `base_pos` is where this arm's
    base sits in it (the Panda's base is its origin; a smaller arm is mounted closer to the workspace), so a
    pose in the arm's own base frame is the task-frame pose minus `base_pos` (the arms are mounted unrotated).
    """

    name: str
    base_pos: tuple[float, float, float]
    joint_names: tuple[str, ...]
    ready_q: np.ndarray  # a comfortable configuration: IK seed and nullspace posture
    q_low: np.ndarray
    q_high: np.ndarray
    torque_limit: np.ndarray
    tcp_site: str  # the tool centre point (between the fingertips)
    flange_site: str  # where the wrench is measured
    hand_body: str  # objects "held in the hand" are attached here
    finger_joints: tuple[str, str]
    gripper_actuator: str
    max_gripper_width: float  # m, full opening between the fingers
    wrist_camera: str


def dh_frame(a: float, d: float, alpha: float, theta_offset: float = 0.0) -> tuple[list[float], list[float]]:
    """Pose of joint frame i in frame i-1 for modified (Craig) DH: RotX(alpha) TransX(a) RotZ(offset) TransZ(d).

    The joint then rotates about the new z axis, so joint angle 0 is theta = offset: the vendor's zero pose.
    """
    pos = [a, -np.sin(alpha) * d, np.cos(alpha) * d]
    rot_x = np.array([np.cos(alpha / 2), np.sin(alpha / 2), 0.0, 0.0])
    rot_z = np.array([np.cos(theta_offset / 2), 0.0, 0.0, np.sin(theta_offset / 2)])
    return pos, quat_mul(rot_x, rot_z).tolist()


def link_geoms(
    body: mujoco.MjsBody, child_pos: np.ndarray, mass: float, rgba, radius: float, housing_half: float
) -> None:
    """A joint housing along the local z axis plus a capsule to the next joint origin, half the mass each
    (all of it in the housing when the next joint shares this origin)."""
    has_capsule = bool(np.linalg.norm(child_pos) > 1e-6)
    housing = body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[radius, housing_half, 0], rgba=rgba,
        mass=mass * 0.5 if has_capsule else mass,
    )
    housing.contype, housing.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    if has_capsule:
        cap = body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, 0, 0, *child_pos],
            size=[radius * 0.9, 0, 0],
            rgba=rgba,
            mass=mass * 0.5,
        )
        cap.contype, cap.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY


@dataclass(frozen=True)
class ParallelGripper:
    """Two fingers sliding apart along the hand's y axis from a common origin on the hand's z axis.

    Each finger is an outer box with a high-friction pad on its inner face; the pads touch at zero opening.
    The fingers are coupled by an equality constraint and driven by one position actuator whose force is capped
    at the gripper's rated grasp force, so it really grasps (and cannot crush through an object).
    """

    finger_z: float  # finger origin along the hand z axis
    travel: float  # per finger, m: full opening is twice this
    finger_half: tuple[float, float, float]  # outer finger box
    pad_half: tuple[float, float, float]
    pad_z: float  # pad centre along the finger z axis
    force: float  # N, grasp force cap
    finger_mass: float
    rgba: tuple[float, float, float, float]
    pad_rgba: tuple[float, float, float, float]


def add_parallel_gripper(
    spec: mujoco.MjSpec, hand: mujoco.MjsBody, g: ParallelGripper, prefix: str
) -> tuple[str, str]:
    """Add the fingers, their coupling and the gripper actuator (`prefix + "gripper"`); return the finger joints."""
    finger_names = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add_body(name=f"{prefix}{side}_finger", pos=[0, 0, g.finger_z], gravcomp=1.0)
        jname = f"{prefix}finger_{side}"
        finger.add_joint(
            name=jname,
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0.0, g.travel],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=20.0,
            armature=0.05,
        )
        finger_names.append(jname)
        body_geom = finger.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(g.finger_half),
            pos=[0, sign * (2 * g.pad_half[1] + g.finger_half[1]), g.finger_half[2]],
            rgba=list(g.rgba),
            mass=g.finger_mass,
        )
        body_geom.contype, body_geom.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
        pad = finger.add_geom(
            name=f"{prefix}{side}_pad",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(g.pad_half),
            pos=[0, sign * g.pad_half[1], g.pad_z],
            rgba=list(g.pad_rgba),
            friction=[1.5, 0.02, 0.002],
            condim=4,
            solref=[0.01, 1],
            solimp=[0.95, 0.99, 0.001, 0.5, 2],
            mass=0.0,
        )
        pad.contype, pad.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY

    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT,
        name1=finger_names[1],
        name2=finger_names[0],
        data=[0, 1, 0, 0, 0] + [0] * 7,
        solref=[0.005, 1],
    )
    grip = spec.add_actuator(
        name=prefix + "gripper", target=finger_names[0], trntype=mujoco.mjtTrn.mjTRN_JOINT
    )
    grip.set_to_position(kp=2000.0, kv=40.0)
    grip.ctrlrange = [0.0, g.travel]
    grip.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    grip.forcerange = [-g.force, g.force]
    grip.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return finger_names[0], finger_names[1]


def hand_camera_quat(tilt: float) -> list[float]:
    """A camera on the back of the hand looking along the hand's +z (towards the fingers), tilted by `tilt` rad.

    A MuJoCo camera looks along its -z axis, so rotate the camera pi about the hand's x axis, then tilt it
    about its y axis towards the fingertips.
    """
    flip = np.array([0.0, 1.0, 0.0, 0.0])  # pi about x
    tilt_q = np.array([np.cos(tilt / 2), 0.0, np.sin(tilt / 2), 0.0])
    return quat_mul(flip, tilt_q).tolist()

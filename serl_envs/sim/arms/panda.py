"""A Franka Emika Panda built procedurally from its published kinematics.

Kinematics: Franka's modified (Craig) DH parameters; joint limits, torque limits and approximate link masses from
Franka's datasheet. Collision geometry is primitive (capsules and boxes); the hand is a two-finger parallel gripper
whose fingers are coupled by an equality constraint and driven by one position actuator, with high-friction pads
so it really grasps. Nothing here is copied from a mesh or model file.
"""

from __future__ import annotations

import mujoco
import numpy as np

from serl_envs.sim.arms.base import ARM_CONAFFINITY, ARM_CONTYPE, ArmInfo

# (a_{i-1}, d_i, alpha_{i-1}) for joints 1..7, then the flange (Franka docs, modified DH).
PANDA_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
FLANGE_D = 0.107
HAND_TCP_OFFSET = 0.1034  # flange -> fingertip centre
Q_LOW = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_HIGH = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
TAU_MAX = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
READY_Q = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
LINK_MASS = (4.97, 0.646, 3.228, 3.588, 1.226, 1.667, 0.736)  # links 1..7, kg (approx.)
HAND_MASS, FINGER_MASS = 0.73, 0.015
LINK_RADIUS = 0.055
FINGER_TRAVEL = 0.04  # per finger, m

WHITE = (0.92, 0.92, 0.94, 1.0)
DARK = (0.2, 0.2, 0.22, 1.0)


def _dh_frame(a: float, d: float, alpha: float) -> tuple[list[float], list[float]]:
    """Pose of joint frame i in frame i-1 for modified DH: RotX(alpha) TransX(a) TransZ(d) (then RotZ(theta))."""
    pos = [a, -np.sin(alpha) * d, np.cos(alpha) * d]
    quat = [np.cos(alpha / 2), np.sin(alpha / 2), 0.0, 0.0]
    return pos, quat


def _link_geoms(body: mujoco.MjsBody, child_pos: np.ndarray, mass: float, rgba) -> None:
    """A joint housing along the local z axis plus a capsule to the next joint origin."""
    housing = body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[LINK_RADIUS, 0.055, 0], rgba=rgba, mass=mass * 0.5
    )
    housing.contype, housing.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    if np.linalg.norm(child_pos) > 1e-6:
        cap = body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, 0, 0, *child_pos],
            size=[LINK_RADIUS * 0.9, 0, 0],
            rgba=rgba,
            mass=mass * 0.5,
        )
        cap.contype, cap.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY


def add_panda(spec: mujoco.MjSpec, base_pos=(0.0, 0.0, 0.0), prefix: str = "panda/") -> ArmInfo:
    """Add a Panda with its hand to `spec.worldbody`; return the names the sim robot binds to."""
    base = spec.worldbody.add_body(name=prefix + "link0", pos=list(base_pos))
    g = base.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.09, 0.05, 0], pos=[0, 0, 0.05], rgba=WHITE)
    g.contype, g.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    _link_geoms(base, np.array([0.0, 0.0, PANDA_DH[0][1]]), 2.0, WHITE)

    joint_names = []
    parent = base
    for i, (a, d, alpha) in enumerate(PANDA_DH):
        pos, quat = _dh_frame(a, d, alpha)
        body = parent.add_body(name=f"{prefix}link{i + 1}", pos=pos, quat=quat, gravcomp=1.0)
        jname = f"{prefix}joint{i + 1}"
        body.add_joint(
            name=jname,
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0, 0, 1],
            range=[Q_LOW[i], Q_HIGH[i]],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=2.0 if i < 4 else 0.5,
            armature=0.1,
            actfrcrange=[-TAU_MAX[i], TAU_MAX[i]],
            actfrclimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        joint_names.append(jname)
        if i + 1 < len(PANDA_DH):
            na, nd, nalpha = PANDA_DH[i + 1]
            child = np.array(_dh_frame(na, nd, nalpha)[0])
        else:
            child = np.array([0.0, 0.0, FLANGE_D])
        _link_geoms(body, child, LINK_MASS[i], DARK if i == 6 else WHITE)
        parent = body

    # Flange and Franka Hand: rotated -pi/4 about z, fingers slide along the hand's y axis.
    hand = parent.add_body(
        name=prefix + "hand", pos=[0, 0, FLANGE_D], quat=[np.cos(-np.pi / 8), 0, 0, np.sin(-np.pi / 8)], gravcomp=1.0
    )
    hand.add_site(name=prefix + "flange", pos=[0, 0, 0], size=[0.005, 0, 0])
    palm = hand.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.03, 0.1, 0.03], pos=[0, 0, 0.035], rgba=WHITE, mass=HAND_MASS
    )
    palm.contype, palm.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    hand.add_site(name=prefix + "tcp", pos=[0, 0, HAND_TCP_OFFSET], size=[0.006, 0, 0], rgba=[1, 0, 0, 0.5])
    hand.add_camera(
        name=prefix + "wrist_cam",
        pos=[0.07, 0, 0.03],
        quat=_look_down_hand_quat(),
        fovy=75,
    )

    finger_names = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add_body(name=f"{prefix}{side}_finger", pos=[0, 0, 0.0584], gravcomp=1.0)
        jname = f"{prefix}finger_{side}"
        finger.add_joint(
            name=jname,
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0.0, FINGER_TRAVEL],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=20.0,
            armature=0.05,
        )
        finger_names.append(jname)
        # Finger body (outer) and a high-friction pad facing the other finger.
        body_geom = finger.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.01, 0.006, 0.022],
            pos=[0, sign * 0.012, 0.022],
            rgba=WHITE,
            mass=FINGER_MASS,
        )
        body_geom.contype, body_geom.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
        pad = finger.add_geom(
            name=f"{prefix}{side}_pad",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.0085, 0.003, 0.0095],
            pos=[0, sign * 0.003, 0.0355],
            rgba=DARK,
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
    grip = spec.add_actuator(name=prefix + "gripper", target=finger_names[0], trntype=mujoco.mjtTrn.mjTRN_JOINT)
    grip.set_to_position(kp=2000.0, kv=40.0)
    grip.ctrlrange = [0.0, FINGER_TRAVEL]
    grip.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    grip.forcerange = [-70.0, 70.0]  # Franka Hand continuous grasp force
    grip.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE

    return ArmInfo(
        name="panda",
        joint_names=tuple(joint_names),
        ready_q=READY_Q.copy(),
        q_low=Q_LOW.copy(),
        q_high=Q_HIGH.copy(),
        torque_limit=TAU_MAX.copy(),
        tcp_site=prefix + "tcp",
        flange_site=prefix + "flange",
        hand_body=prefix + "hand",
        finger_joints=(finger_names[0], finger_names[1]),
        gripper_actuator=prefix + "gripper",
        max_gripper_width=2 * FINGER_TRAVEL,
        wrist_camera=prefix + "wrist_cam",
    )


def _look_down_hand_quat() -> list[float]:
    """Camera on the back of the hand looking along the hand's +z (towards the fingers).

    A MuJoCo camera looks along its -z axis, so rotate the camera pi about the hand's x axis, then tilt it a
    little towards the fingertips.
    """
    tilt = np.deg2rad(20)
    flip = np.array([0.0, 1.0, 0.0, 0.0])  # pi about x
    tilt_q = np.array([np.cos(tilt / 2), 0.0, np.sin(tilt / 2), 0.0])
    w1, x1, y1, z1 = flip
    w2, x2, y2, z2 = tilt_q
    return [
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ]

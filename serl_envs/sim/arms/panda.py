"""A Franka Emika Panda built procedurally from its published kinematics.

Kinematics: Franka's modified (Craig) DH parameters; joint limits, torque limits and approximate link masses from
Franka's datasheet. Collision geometry is primitive (capsules and boxes); the hand is a two-finger parallel gripper
whose fingers are coupled by an equality constraint and driven by one position actuator, with high-friction pads
so it really grasps. Nothing here is copied from a mesh or model file.
"""

from __future__ import annotations

import mujoco
import numpy as np

from serl_envs.sim.arms.base import (
    ARM_CONAFFINITY,
    ARM_CONTYPE,
    ArmInfo,
    ParallelGripper,
    add_parallel_gripper,
    dh_frame,
    hand_camera_quat,
    link_geoms,
)

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
HAND_MASS = 0.73
LINK_RADIUS = 0.055

WHITE = (0.92, 0.92, 0.94, 1.0)
DARK = (0.2, 0.2, 0.22, 1.0)
# Franka Hand: 40 mm per finger, 70 N continuous grasp force.
GRIPPER = ParallelGripper(
    finger_z=0.0584, travel=0.04, finger_half=(0.01, 0.006, 0.022), pad_half=(0.0085, 0.003, 0.0095), pad_z=0.0355,
    force=70.0, finger_mass=0.015, rgba=WHITE, pad_rgba=DARK,
)


def add_panda(spec: mujoco.MjSpec, base_pos=(0.0, 0.0, 0.0), prefix: str = "panda/") -> ArmInfo:
    """Add a Panda with its hand to `spec.worldbody`; return the names the sim robot binds to."""
    base = spec.worldbody.add_body(name=prefix + "link0", pos=list(base_pos))
    g = base.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.09, 0.05, 0], pos=[0, 0, 0.05], rgba=WHITE)
    g.contype, g.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    link_geoms(base, np.array([0.0, 0.0, PANDA_DH[0][1]]), 2.0, WHITE, LINK_RADIUS, 0.055)

    joint_names = []
    parent = base
    for i, (a, d, alpha) in enumerate(PANDA_DH):
        pos, quat = dh_frame(a, d, alpha)
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
            child = np.array(dh_frame(na, nd, nalpha)[0])
        else:
            child = np.array([0.0, 0.0, FLANGE_D])
        link_geoms(body, child, LINK_MASS[i], DARK if i == 6 else WHITE, LINK_RADIUS, 0.055)
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
        quat=hand_camera_quat(np.deg2rad(20)),
        fovy=75,
    )

    fingers = add_parallel_gripper(spec, hand, GRIPPER, prefix)

    return ArmInfo(
        name="panda",
        base_pos=tuple(base_pos),
        joint_names=tuple(joint_names),
        ready_q=READY_Q.copy(),
        q_low=Q_LOW.copy(),
        q_high=Q_HIGH.copy(),
        torque_limit=TAU_MAX.copy(),
        tcp_site=prefix + "tcp",
        flange_site=prefix + "flange",
        hand_body=prefix + "hand",
        finger_joints=fingers,
        gripper_actuator=prefix + "gripper",
        max_gripper_width=2 * GRIPPER.travel,
        wrist_camera=prefix + "wrist_cam",
    )


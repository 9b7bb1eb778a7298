"""An AgileX Piper built procedurally from its published kinematics (REFERENCE §E).

Kinematics: piper_sdk's modified (Craig) DH table with the `dh_is_offset=0x01` joint offsets (firmware >= S-V1.6-3),
so joint angle 0 is the SDK's zero and the flange sits at (56.128, 0, 213.266) mm from the base there; joint limits
are the SDK's. Collision geometry is primitive (capsules, cylinders and boxes); nothing is copied from a mesh or
model file.

Assumed, not published (stated so a user can change them):
- Link masses: the arm weighs about 4.2 kg and carries 1.5 kg; its 3.4 kg of moving mass is split by link size
  (the vendor URDF's CAD masses add up to only ~1.3 kg, so they are not used).
- Torque limits: 16 Nm for the three base motors (piper_sdk bounds its MIT-mode torque reference at 16-18 Nm) and
  5 Nm for the wrist. Gravity compensation runs through the motors (MuJoCo's `actuatorgravcomp`), so it counts
  against these limits as on the real arm; the arm's own weight (<= 9.5 Nm at J2 over the tasks' workspaces) plus
  the rated 1.5 kg payload stay within them.
- Gripper: the Piper's parallel gripper, 0-70 mm opening (35 mm per finger), 40 N grasp force; the tool centre
  point is 135 mm beyond the flange, at the fingertips (where the vendor URDF puts the finger frames).
- Mount (`PIPER_MOUNT`, reported as `ArmInfo.base_pos`): the tasks are written in the Panda's base frame for a
  Panda-sized workspace, so the Piper stands 0.2 m in front of that origin, facing +x, on a 0.16 m riser. The riser
  matters as much as the offset: J5 bends at most 70 deg, so pointing down needs a forearm sloping down at least 20
  deg, and from the table top the Piper could point down only below ~0.1 m. From this mount it reaches every pose
  the tasks need (PickCube's whole cube area, grasped and lifted; PegInsert's safety-box corners pointing down and
  its board area; both homes), and PickCube's cube area stays 2 cm clear of the riser. The Franka-sized safety
  boxes of PickCube, BinRelocate, CableRoute and DrawerOpen are larger than any Piper mount clear of their spawn
  areas can cover (pointing down, it reaches no higher than about 0.28 m, and less far out), so those tasks declare
  a Piper box (`Task.arm_boxes`) whose every corner it reaches; targets beyond its reach stretch the arm to rest
  short, without a MuJoCo warning.
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

# (a_{i-1}, d_i, alpha_{i-1}, theta offset) for joints 1..6, metres and radians (piper_sdk, dh_is_offset=0x01).
# Frame 6 is the flange (d6 = 91 mm).
PIPER_DH = (
    (0.0, 0.123, 0.0, 0.0),
    (0.0, 0.0, -np.pi / 2, np.deg2rad(-172.22)),
    (0.28503, 0.0, 0.0, np.deg2rad(-102.78)),
    (-0.02198, 0.25075, np.pi / 2, 0.0),
    (0.0, 0.0, -np.pi / 2, 0.0),
    (0.0, 0.091, np.pi / 2, 0.0),
)
Q_LOW = np.array([-2.6179, 0.0, -2.967, -1.745, -1.22, -2.09439])
Q_HIGH = np.array([2.6179, 3.14, 0.0, 1.745, 1.22, 2.09439])
TAU_MAX = np.array([16.0, 16.0, 16.0, 5.0, 5.0, 5.0])
READY_Q = np.array([0.0, 1.6, -0.8, 0.0, 0.9, 0.0])  # pointing down, 0.25 m in front of the base
BASE_MASS = 0.8
LINK_MASS = (0.6, 0.9, 0.7, 0.3, 0.3, 0.1)  # links 1..6, kg (assumed, see above)
HAND_MASS = 0.44
LINK_RADIUS = 0.035
HAND_TCP_OFFSET = 0.135  # flange -> fingertip centre
PIPER_MOUNT = (0.2, 0.0, 0.16)

GREY = (0.72, 0.73, 0.75, 1.0)
DARK = (0.15, 0.15, 0.16, 1.0)
RISER = (0.35, 0.36, 0.38, 1.0)
GRIPPER = ParallelGripper(
    finger_z=0.085,
    travel=0.035,
    finger_half=(0.01, 0.005, 0.027),
    pad_half=(0.0085, 0.003, 0.0095),
    pad_z=0.0445,
    force=40.0,
    finger_mass=0.03,
    rgba=DARK,
    pad_rgba=DARK,
)


def add_piper(spec: mujoco.MjSpec, base_pos=PIPER_MOUNT, prefix: str = "piper/") -> ArmInfo:
    """Add a Piper with its gripper to `spec.worldbody` at `base_pos`; return the names the sim robot binds to."""
    base = spec.worldbody.add_body(name=prefix + "base_link", pos=list(base_pos))
    g = base.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.05, 0.03, 0],
        pos=[0, 0, 0.03],
        rgba=DARK,
        mass=BASE_MASS / 2,
    )
    g.contype, g.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    if base_pos[2] > 0:  # the riser it stands on, down to the table top (z = 0)
        riser = base.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.06, 0.06, base_pos[2] / 2],
            pos=[0, 0, -base_pos[2] / 2],
            rgba=RISER,
        )
        riser.contype, riser.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    link_geoms(base, np.array([0.0, 0.0, PIPER_DH[0][1]]), BASE_MASS / 2, GREY, LINK_RADIUS, 0.03)

    joint_names = []
    parent = base
    for i, (a, d, alpha, offset) in enumerate(PIPER_DH):
        pos, quat = dh_frame(a, d, alpha, offset)
        body = parent.add_body(name=f"{prefix}link{i + 1}", pos=pos, quat=quat, gravcomp=1.0)
        jname = f"{prefix}joint{i + 1}"
        body.add_joint(
            name=jname,
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0, 0, 1],
            range=[Q_LOW[i], Q_HIGH[i]],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=1.0 if i < 3 else 0.2,
            armature=0.05 if i < 3 else 0.02,
            actfrcrange=[-TAU_MAX[i], TAU_MAX[i]],
            actfrclimited=mujoco.mjtLimited.mjLIMITED_TRUE,
            actgravcomp=True,
        )
        joint_names.append(jname)
        child = np.array(dh_frame(*PIPER_DH[i + 1])[0]) if i + 1 < len(PIPER_DH) else np.zeros(3)
        link_geoms(body, child, LINK_MASS[i], GREY, LINK_RADIUS, 0.035)
        # Where the next joint (or the flange) starts right here, its motor housing carries the other half.
        if not child.any():
            next_alpha = PIPER_DH[i + 1][2] if i + 1 < len(PIPER_DH) else 0.0
            _motor_housing(body, np.array([0.0, -np.sin(next_alpha), np.cos(next_alpha)]), LINK_MASS[i] / 2)
        parent = body

    # The gripper on the flange (frame 6), turned pi about z (it is symmetric) so that pointing down with the
    # fingers closing along the base y axis, the tasks' nominal pose, is J6 = 0 and not J6 = pi (beyond +-120 deg).
    hand = parent.add_body(name=prefix + "hand", quat=[0, 0, 0, 1], gravcomp=1.0)
    hand.add_site(name=prefix + "flange", pos=[0, 0, 0], size=[0.005, 0, 0])
    palm = hand.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.025, 0.05, 0.04], pos=[0, 0, 0.045], rgba=GREY, mass=HAND_MASS
    )
    palm.contype, palm.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    hand.add_site(name=prefix + "tcp", pos=[0, 0, HAND_TCP_OFFSET], size=[0.006, 0, 0], rgba=[1, 0, 0, 0.5])
    hand.add_camera(
        name=prefix + "wrist_cam", pos=[0.05, 0, 0.085], quat=hand_camera_quat(np.deg2rad(30)), fovy=75
    )
    fingers = add_parallel_gripper(spec, hand, GRIPPER, prefix)

    return ArmInfo(
        name="piper",
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


def _motor_housing(body: mujoco.MjsBody, axis: np.ndarray, mass: float) -> None:
    """A dark cylinder along `axis` (the next joint's axis) through the body origin: that joint's motor."""
    half = 0.03 * axis  # shorter and wider than the next link's housing, so no faces coincide
    geom = body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        fromto=[*-half, *half],
        size=[LINK_RADIUS * 1.1, 0, 0],
        rgba=DARK,
        mass=mass,
    )
    geom.contype, geom.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY

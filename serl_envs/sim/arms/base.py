"""What every procedural arm builder provides to the scene and the sim robot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Collision groups: arm links never collide with each other (their capsules overlap at the joints), but do
# collide with the world and with objects.
ARM_CONTYPE, ARM_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3


@dataclass(frozen=True)
class ArmInfo:
    """Names and constants of an arm added to an MjSpec, used to bind ids after compiling."""

    name: str
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

"""Small gymnasium wrappers composed around a serl_envs env (STYLE 13): intervention, gripper penalty, ..."""

from serl_envs.wrappers.gripper_penalty import GripperPenaltyWrapper
from serl_envs.wrappers.intervention import InterventionWrapper

__all__ = ["GripperPenaltyWrapper", "InterventionWrapper"]

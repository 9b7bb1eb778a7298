"""Small gymnasium wrappers composed around a serl_envs env (STYLE 13): intervention, gripper penalty, ..."""

from serl_envs.wrappers.gripper_penalty import GripperPenaltyWrapper
from serl_envs.wrappers.intervention import InterventionWrapper
from serl_envs.wrappers.reward_classifier import ClassifierReward, RewardClassifierWrapper

__all__ = ["ClassifierReward", "GripperPenaltyWrapper", "InterventionWrapper", "RewardClassifierWrapper"]

"""GripperPenaltyWrapper: the penalty appears exactly on the steps whose gripper command toggles state."""

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.wrappers import GripperPenaltyWrapper, InterventionWrapper
from serl_envs.wrappers.devices import ScriptedDevice


def act(gripper):
    return np.array([0.0, 0.0, 0.0, gripper], dtype=np.float32)


def test_penalty_only_on_toggles_with_hysteresis():
    env = GripperPenaltyWrapper(gym.make("SerlFrankaPickCube-v0", disable_env_checker=True), penalty=-0.05)
    env.reset(seed=0)  # starts open
    commands = [-1.0, 0.0, 1.0, 1.0, 0.3, -0.2, 0.0, -0.9, -1.0, 0.7]
    penalties = [env.step(act(g))[4]["grasp_penalty"] for g in commands]
    assert penalties == [0.0, 0.0, -0.05, 0.0, 0.0, 0.0, 0.0, -0.05, 0.0, -0.05]
    env.reset(seed=1)  # state back to open: closing again is a toggle
    assert env.step(act(1.0))[4]["grasp_penalty"] == -0.05


def test_penalty_uses_the_executed_human_action():
    human = act(1.0)
    device = ScriptedDevice(lambda ep, t: human, active=lambda ep, t: t == 2)
    env = GripperPenaltyWrapper(InterventionWrapper(gym.make("SerlFrankaPickCube-v0"), device))
    env.reset(seed=0)
    infos = [env.step(act(-1.0))[4] for _ in range(4)]  # policy keeps it open; the human closes it at t=2
    assert [i["grasp_penalty"] for i in infos] == [0.0, 0.0, -0.02, -0.02]


def test_rejects_tasks_without_gripper_and_bad_penalty():
    with pytest.raises(ValueError, match="needs an action with a gripper dimension; PegInsert has none"):
        GripperPenaltyWrapper(gym.make("SerlFrankaPegInsert-v0"))
    with pytest.raises(ValueError, match="penalty must be finite"):
        GripperPenaltyWrapper(gym.make("SerlFrankaPickCube-v0"), penalty=float("nan"))

"""RewardClassifierWrapper: the classifier's decision becomes reward, success and termination; the env's own flag is
kept as info["true_success"]; a classifier for other cameras or image sizes is refused with the key named."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.wrappers.reward_classifier import ClassifierReward, RewardClassifierWrapper

SHAPE = (8, 8, 3)


class Scripted(gym.Env):
    """Its front image is filled with the step count; success (ground truth) from step 2 on; terminates at step 5."""

    observation_space = gym.spaces.Dict({
        "front": gym.spaces.Box(0, 255, SHAPE, np.uint8), "state": gym.spaces.Box(-1, 1, (2,), np.float32)})
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, with_flag: bool = True):
        self.with_flag, self.t = with_flag, 0

    def _obs(self):
        return {"front": np.full(SHAPE, self.t, np.uint8), "state": np.zeros(2, np.float32)}

    def _info(self):
        return {"is_success": self.t >= 2, "other": self.t} if self.with_flag else {"other": self.t}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.t += 1
        return self._obs(), -5.0, self.t >= 5, False, self._info()


class StepClassifier:
    """Probability = schedule[step shown in the front image]; declares the image it reads."""

    image_shapes = {"front": SHAPE}

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, obs):
        return np.array([self.schedule[int(obs["front"][0, 0, 0])]])


SCHEDULE = [0.1, 0.3, 0.7, 0.2, 0.9, 0.95]


def rollout(env):
    obs, info = env.reset(seed=0)
    steps = [(None, False, False, info)]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        steps.append((reward, terminated, truncated, info))
        done = terminated or truncated
    return steps


def test_sparse_reward_success_and_termination_from_the_classifier():
    steps = rollout(RewardClassifierWrapper(Scripted(), StepClassifier(SCHEDULE)))
    assert [s[0] for s in steps] == [None, 0.0, 1.0]  # p = 0.3, then 0.7 >= 0.5 ends the episode
    assert steps[-1][1] is True
    infos = [s[3] for s in steps]
    assert [i["is_success"] for i in infos] == [False, False, True]
    assert [i["classifier_probability"] for i in infos] == [0.1, 0.3, 0.7]
    assert [i["true_success"] for i in infos] == [False, False, True]
    assert [i["other"] for i in infos] == [0, 1, 2]  # the env's other info entries pass through


def test_probability_reward_without_termination_keeps_the_envs_own_ending():
    env = RewardClassifierWrapper(Scripted(), StepClassifier(SCHEDULE), threshold=0.8, reward="probability",
                                  terminate_on_success=False)
    steps = rollout(env)
    assert [s[0] for s in steps[1:]] == [0.3, 0.7, 0.2, 0.9, 0.95]
    assert [s[3]["is_success"] for s in steps[1:]] == [False, False, False, True, True]
    assert [s[3]["true_success"] for s in steps[1:]] == [False, True, True, True, True]  # the ground truth differs
    assert [s[1] for s in steps[1:]] == [False] * 4 + [True]  # terminated only by the env, at step 5


def test_no_true_success_when_the_env_has_no_flag_and_classifier_reward_as_reward_fn():
    steps = rollout(RewardClassifierWrapper(Scripted(with_flag=False), StepClassifier(SCHEDULE)))
    assert all("true_success" not in s[3] for s in steps) and steps[-1][3]["is_success"] is True
    reward_fn = ClassifierReward(StepClassifier(SCHEDULE), threshold=0.6)  # what a real env's reward_fn= takes
    assert reward_fn(Scripted()._obs()) == (0.0, False)


def test_wrong_camera_or_image_size_is_refused_at_construction_naming_the_key():
    env = gym.make("SerlFrankaPickCubeVision-v0", image_size=(64, 64))
    classifier = StepClassifier(SCHEDULE)
    classifier.image_shapes = {"front": (128, 128, 3)}
    with pytest.raises(ValueError, match=re.escape(
            "the reward classifier reads image 'front' of shape (128, 128, 3), but the env's 'front' has shape "
            "(64, 64, 3)")):
        RewardClassifierWrapper(env, classifier)
    classifier.image_shapes = {"side": (64, 64, 3)}
    with pytest.raises(ValueError, match=re.escape(
            "the reward classifier reads image 'side' of shape (64, 64, 3), but the env's observations have no "
            "'side' (keys: ['front', 'state', 'wrist'])")):
        RewardClassifierWrapper(env, classifier)
    with pytest.raises(ValueError, match="but the env's observations are a Box, not a dict"):
        RewardClassifierWrapper(gym.make("SerlFrankaPickCube-v0"), classifier)
    env.close()


def test_image_shapes_found_on_a_bound_method_and_bad_outputs_rejected():
    class Model:
        image_shapes = {"front": (16, 16, 3)}

        def predict(self, obs):
            return 0.5

    with pytest.raises(ValueError, match=re.escape("reads image 'front' of shape (16, 16, 3)")):
        RewardClassifierWrapper(Scripted(), Model().predict)
    env = RewardClassifierWrapper(Scripted(), lambda obs: 1.5)
    with pytest.raises(ValueError, match="must return a probability in \\[0, 1\\], got 1.5"):
        env.reset()
    env = RewardClassifierWrapper(Scripted(), lambda obs: np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="must return one probability per observation"):
        env.reset()
    with pytest.raises(ValueError, match="threshold must be in \\(0, 1\\), got 1.0"):
        RewardClassifierWrapper(Scripted(), StepClassifier(SCHEDULE), threshold=1.0)
    with pytest.raises(ValueError, match="reward must be one of \\['sparse', 'probability'\\], got 'dense'"):
        RewardClassifierWrapper(Scripted(), StepClassifier(SCHEDULE), reward="dense")


def test_with_a_success_classifier_on_the_vision_env():
    from serl_agents.classifier import ClassifierConfig, SuccessClassifier

    env = gym.make("SerlFrankaPickCubeVision-v0", image_size=(32, 32))
    classifier = SuccessClassifier(ClassifierConfig({"front": (32, 32, 3), "wrist": (32, 32, 3)}, hidden_dim=16))
    wrapped = RewardClassifierWrapper(env, classifier.predict_proba, reward="probability", terminate_on_success=False)
    obs, info = wrapped.reset(seed=0)
    obs, reward, terminated, truncated, info = wrapped.step(wrapped.action_space.sample())
    assert reward == pytest.approx(float(classifier.predict_proba(obs)), abs=1e-6)
    assert info["true_success"] is False and info["is_success"] == (reward >= 0.5)
    wrapped.close()

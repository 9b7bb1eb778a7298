"""RewardClassifierWrapper: reward and success from a learned classifier on the camera images (SERL / HIL-SERL).

On a real robot the success of most tasks cannot be measured, so a classifier trained on camera images decides it
(`serl train-classifier`). The wrapper replaces the env's reward and `info["is_success"]` with the classifier's
decision, `p >= threshold`: reward 1/0 (`reward="sparse"`, HIL-SERL's) or `p` itself (`reward="probability"`), and
with `terminate_on_success` the episode ends there, as SERL's classifier wrappers end it. The env's own flag, when
it has one (sim, or a real task that can measure success), is kept as `info["true_success"]`: in sim that is how
a learned reward is measured against the ground truth. `info["classifier_probability"]` is `p`.

The classifier is any callable `obs -> probability` (a float or a one-element array or tensor), e.g.
`SuccessClassifier.load("clf.pt").predict_proba`, so this module does not import torch. When the classifier (or the
object its method is bound to) has `image_shapes` ({camera key: (H, W, 3)}), the env's observation space is checked
against it when the wrapper is built, and a missing camera or a wrong image size is a ValueError naming the key.

For a real task whose env cannot compute any reward (PickCube: the cube's pose is unknown), pass
`ClassifierReward(classifier)` as the env's `reward_fn` instead: `gym.make("SerlFrankaPickCubeReal-v0",
robot_url=..., reward_fn=ClassifierReward(clf.predict_proba))`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

REWARDS = ("sparse", "probability")


def _image_shapes_of(classifier: Callable[[Any], Any]) -> Mapping[str, tuple[int, ...]] | None:
    for owner in (classifier, getattr(classifier, "__self__", None)):
        shapes = getattr(owner, "image_shapes", None)
        if isinstance(shapes, Mapping):
            return shapes
    return None


def check_observation_space(space: gym.Space, image_shapes: Mapping[str, tuple[int, ...]]) -> None:
    """ValueError naming the camera unless `space` holds every key of `image_shapes` with that image shape."""
    spaces = getattr(space, "spaces", None)
    expected = {key: tuple(shape) for key, shape in image_shapes.items()}
    if not isinstance(spaces, Mapping):
        raise ValueError(
            f"the reward classifier reads camera images {expected}, but the env's observations are a "
            f"{type(space).__name__}, not a dict: use a vision env (e.g. SerlFrankaPickCubeVision-v0)"
        )
    for key, shape in expected.items():
        if key not in spaces:
            raise ValueError(
                f"the reward classifier reads image {key!r} of shape {shape}, but the env's observations have no "
                f"{key!r} (keys: {sorted(spaces)})"
            )
        actual = tuple(getattr(spaces[key], "shape", ()) or ())
        if actual != shape:
            raise ValueError(
                f"the reward classifier reads image {key!r} of shape {shape}, but the env's {key!r} has shape "
                f"{actual}: train the classifier on images of this size, or make the env with image_size="
            )


class ClassifierReward:
    """`obs -> (reward, success)` from a probability classifier; also the `reward_fn` a real env takes.

    Args:
        classifier: callable obs -> success probability in [0, 1].
        threshold: success is `probability >= threshold`.
        reward: "sparse" (1.0 on success, else 0.0) or "probability" (the probability itself).
    """

    def __init__(self, classifier: Callable[[Any], Any], threshold: float = 0.5, reward: str = "sparse") -> None:
        if not callable(classifier):
            raise TypeError(f"classifier must be callable(obs) -> probability, got {classifier!r}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
        self.classifier, self.threshold, self.reward = classifier, float(threshold), reward
        self.image_shapes = _image_shapes_of(classifier)

    def probability(self, obs: Any) -> float:
        out = self.classifier(obs)
        try:
            value = float(out.item() if hasattr(out, "item") else out)
        except (TypeError, ValueError) as err:
            raise ValueError(f"the classifier must return one probability per observation, got {out!r}") from err
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"the classifier must return a probability in [0, 1], got {value!r}")
        return value

    def evaluate(self, obs: Any) -> tuple[float, bool, float]:
        """(reward, success, probability) for one observation."""
        probability = self.probability(obs)
        success = probability >= self.threshold
        return (float(success) if self.reward == "sparse" else probability), success, probability

    def __call__(self, obs: Any) -> tuple[float, bool]:
        reward, success, _ = self.evaluate(obs)
        return reward, success


class RewardClassifierWrapper(gym.Wrapper):
    """Reward, `info["is_success"]` and (optionally) termination from a classifier on the observation.

    Args:
        env: a vision env (dict observations with camera images).
        classifier: callable obs -> success probability in [0, 1] (e.g. `SuccessClassifier.predict_proba`).
        threshold: success is `probability >= threshold` (HIL-SERL's tasks use 0.5-0.85).
        reward: "sparse" (1.0 on success, else 0.0) or "probability".
        terminate_on_success: end the episode when the classifier says success (SERL); the env's own
            termination is kept either way.
    """

    def __init__(
        self,
        env: gym.Env,
        classifier: Callable[[Any], Any],
        threshold: float = 0.5,
        reward: str = "sparse",
        terminate_on_success: bool = True,
    ) -> None:
        super().__init__(env)
        self.reward_fn = ClassifierReward(classifier, threshold, reward)
        if self.reward_fn.image_shapes is not None:
            check_observation_space(env.observation_space, self.reward_fn.image_shapes)
        self.terminate_on_success = bool(terminate_on_success)

    def _label(self, obs: Any, info: Mapping[str, Any]) -> tuple[float, bool, dict[str, Any]]:
        reward, success, probability = self.reward_fn.evaluate(obs)
        info = dict(info)
        if "is_success" in info:
            info["true_success"] = info["is_success"]
        info["is_success"] = success
        info["classifier_probability"] = probability
        return reward, success, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        _, _, info = self._label(obs, info)
        return obs, info

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        reward, success, info = self._label(obs, info)
        terminated = bool(terminated) or (self.terminate_on_success and success)
        return obs, reward, terminated, truncated, info

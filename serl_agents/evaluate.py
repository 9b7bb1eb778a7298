"""Seeded evaluation of a policy on a Gymnasium ID: success rate, return, and an optional video."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never reuse a training seed


@dataclass(frozen=True)
class EvalResult:
    success_rate: float
    mean_return: float
    mean_length: float
    episodes: int


def evaluate(
    policy: Callable[[object], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int = 0,
    video_path: Path | None = None,
) -> EvalResult:
    """Run `episodes` episodes with seeds seed+OFFSET+i; success is `info["is_success"]` at the episode end.

    With `video_path` (the env must have render_mode="rgb_array") the first episode is written as an mp4.
    """
    returns, lengths, wins, frames = [], [], 0, []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + episode)
        done, total, length = False, 0.0, 0
        info: dict = {}
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
            if video_path is not None and episode == 0:
                frames.append(env.render())
        returns.append(total)
        lengths.append(length)
        wins += bool(info.get("is_success", False))
    if video_path is not None and frames:
        video_path.parent.mkdir(parents=True, exist_ok=True)
        imageio.mimwrite(video_path, frames, fps=env.metadata.get("render_fps", 20))
    return EvalResult(wins / episodes, float(np.mean(returns)), float(np.mean(lengths)), episodes)

"""Scripted experts for every sim ID: `policy = make_expert(env); policy.reset(); action = policy(obs)`.

Experts read privileged sim state through `env.unwrapped` (object poses), so they work for state and vision IDs
alike. They are used for tests (success rates), demos and interventions.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from serl_envs.env import SerlEnv


class ScriptedExpert:
    """Calls the task's expert rule on the env's current robot state; keeps per-episode memory."""

    def __init__(self, env: gym.Env) -> None:
        unwrapped = env.unwrapped
        if not isinstance(unwrapped, SerlEnv):
            raise TypeError(f"make_expert needs a serl_envs env, got {type(unwrapped).__name__}")
        self._env = unwrapped
        self._memory: dict = {}

    def reset(self) -> None:
        self._memory = {}

    def __call__(self, obs=None) -> np.ndarray:
        env = self._env
        rs = env.robot.state()
        action = env.task.expert_action(rs, env.scene, self._memory, env.dt)
        return np.asarray(action, dtype=np.float32)


def make_expert(env: gym.Env) -> ScriptedExpert:
    return ScriptedExpert(env)


def run_expert_episode(env: gym.Env, expert, seed: int) -> tuple[object, float, dict]:
    """One seeded episode of `expert` (anything with `reset()` and `expert(obs) -> action`) in `env`, to its end;
    returns the last (obs, reward, info), so `info["is_success"]` says how it ended."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    reward, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(expert(obs))
        done = terminated or truncated
    return obs, reward, info

"""Any SB3 algorithm runs on every registered sim ID: SAC, TD3 and PPO learn a few hundred steps
(vision IDs: 64, rendering is slow) with every warning turned into an error.

Networks, buffers and batches are tiny: this checks the env/SB3 contract (spaces, dtypes, channel-last
images through VecTransposeImage, time limits, Monitor episode stats), not learning.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC, TD3

import serl_envs

STATE_STEPS, VISION_STEPS = 200, 64


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny networks gain nothing from intra-op threads; on a busy machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def algo_kwargs(algo: str, steps: int, vision: bool) -> dict:
    """Tiny nets; 2-4 gradient steps at the end of the run (a CNN step on two 128x128 cameras is costly)."""
    policy_kwargs: dict = {"net_arch": [16]}
    if vision:
        policy_kwargs["features_extractor_kwargs"] = {"cnn_output_dim": 8}
    if algo == "PPO":
        return {
            "n_steps": steps // 2,
            "batch_size": steps // 2,
            "n_epochs": 1,
            "policy_kwargs": policy_kwargs,
        }
    return {
        "buffer_size": steps,
        "learning_starts": steps - 4,
        "batch_size": 8,
        "policy_kwargs": policy_kwargs,
    }


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("algo", ["SAC", "TD3", "PPO"])
@pytest.mark.parametrize("env_id", serl_envs.sim_env_ids())
def test_sb3_algorithm_learns_on_every_sim_id(env_id: str, algo: str) -> None:
    env = gym.make(env_id)
    vision = isinstance(env.observation_space, gym.spaces.Dict)
    steps = VISION_STEPS if vision else STATE_STEPS
    cls = {"SAC": SAC, "TD3": TD3, "PPO": PPO}[algo]
    model = cls(
        "MultiInputPolicy" if vision else "MlpPolicy",
        env,
        seed=0,
        device="cpu",
        **algo_kwargs(algo, steps, vision),
    )
    model.learn(total_timesteps=steps)

    assert model.num_timesteps == steps
    assert model._n_updates > 0  # gradient steps happened
    if not vision:  # 100-step episodes ended by the TimeLimit and were counted by SB3's Monitor
        assert len(model.ep_info_buffer) == steps // env.spec.max_episode_steps
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == env.action_space.shape and np.all(np.isfinite(action))
    assert env.action_space.contains(action.astype(env.action_space.dtype))
    env.step(action)
    env.close()

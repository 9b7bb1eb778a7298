"""SB3's replay-buffer interface (`add`, `sample`, `size`) over `serl_agents.replay.ReplayBuffer`.

Why not SB3's own buffers: `DictReplayBuffer` stores every image twice (observation and next
observation) and SB3's `optimize_memory_usage` does not support Dict observations, so a vision run
needs twice the RAM of SERL's frame-once buffer. This adapter keeps one `ReplayBuffer` ring per
sub-env of the VecEnv (consecutive transitions of one env share their frame), samples them together
with `MixedSampler` (equal shares: the sub-envs of a VecEnv step in lockstep), and saves without pickle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from serl_agents.replay import MixedSampler, ReplayBuffer


def _row(obs: np.ndarray | Mapping[str, np.ndarray], index: int) -> Any:
    if isinstance(obs, Mapping):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


class SB3ReplayBuffer:
    """The buffer behind `serl_agents.sb3` algorithms: one frame-once ring per env.

    Args:
        buffer_size: observation slots in total, split evenly over the `n_envs` rings. A slot holds
            one frame, so 100-step episodes fit 100 transitions in 101 slots.
        observation_space: the env's (untransposed) observation space.
        action_space: the space of the stored actions (SB3 stores actions scaled to [-1, 1]).
        device: where sampled tensors go.
        n_envs: number of sub-envs of the VecEnv that `add` receives rows from.
        seed: seeds the rings' samplers (ring i uses seed + i); None draws fresh entropy.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        device: str | torch.device = "cpu",
        n_envs: int = 1,
        seed: int | None = None,
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if buffer_size // n_envs < 2:
            raise ValueError(f"buffer_size must be >= 2 * n_envs = {2 * n_envs}, got {buffer_size}")
        self.buffer_size = buffer_size
        self.n_envs = n_envs
        self.buffers = [
            ReplayBuffer(
                observation_space,
                action_space,
                buffer_size // n_envs,
                device,
                seed=None if seed is None else seed + i,
            )
            for i in range(n_envs)
        ]
        self._sampler = MixedSampler(self.buffers, [1.0 / n_envs] * n_envs) if n_envs > 1 else None

    def add(
        self,
        obs: np.ndarray | Mapping[str, np.ndarray],
        next_obs: np.ndarray | Mapping[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: Sequence[Mapping[str, Any]],
    ) -> None:
        """One VecEnv step, as `OffPolicyAlgorithm._store_transition` passes it (leading axis n_envs).

        A time-limit end (`info["TimeLimit.truncated"]`) keeps mask 1: the value bootstraps through it.
        """
        for i, buffer in enumerate(self.buffers):
            truncated = bool(infos[i].get("TimeLimit.truncated", False))
            buffer.insert(
                {
                    "observations": _row(obs, i),
                    "next_observations": _row(next_obs, i),
                    "actions": action[i],
                    "rewards": reward[i],
                    "masks": 0.0 if done[i] and not truncated else 1.0,
                    "dones": bool(done[i]),
                }
            )

    def size(self) -> int:
        """Sampleable transitions over all rings (SB3's `ReplayBuffer.size()`)."""
        return sum(len(buffer) for buffer in self.buffers)

    def __len__(self) -> int:
        return self.size()

    def sample(self, batch_size: int) -> dict[str, Any]:
        """A SERL batch dict (observations, actions, rewards, masks, dones, next_observations) of tensors."""
        if self._sampler is None:
            return self.buffers[0].sample(batch_size)
        return self._sampler.sample(batch_size)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write each ring to `path/env_<i>.npz` (the buffers' own pickle-free format)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for i, buffer in enumerate(self.buffers):
            buffer.save(folder / f"env_{i}.npz")

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the rings' contents with those `save` wrote to `path` (same n_envs)."""
        folder = Path(path)
        files = sorted(folder.glob("env_*.npz"))
        if len(files) != self.n_envs:
            raise ValueError(
                f"{folder} holds {len(files)} replay files (env_<i>.npz), expected one per env: {self.n_envs}"
            )
        device = self.buffers[0].device
        self.buffers = [ReplayBuffer.load(folder / f"env_{i}.npz", device=device) for i in range(self.n_envs)]
        self._sampler = (
            MixedSampler(self.buffers, [1.0 / self.n_envs] * self.n_envs) if self.n_envs > 1 else None
        )

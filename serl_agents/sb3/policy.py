"""The SB3 policy object of `serl_agents.sb3` algorithms: a thin `BasePolicy` around an agent's actor.

SB3's `predict` machinery (numpy -> tensors, batching, rescaling [-1, 1] actions to the action space)
comes from `BasePolicy`; acting itself is the agent's `sample_actions`, so there is one actor, shared
with the low-level API. The agent is a submodule: the policy's state dict is the agent's weights.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs

from serl_agents.sac import SACAgent


class AgentPolicy(BasePolicy):
    """`predict(obs, deterministic)` through `agent.sample_actions`: tanh(mean) when deterministic."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, agent: SACAgent) -> None:
        # squash_output: the agent's actions are in [-1, 1]; SB3 rescales them to the action space bounds.
        super().__init__(observation_space, action_space, squash_output=True)
        self.agent = agent

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.agent.sample_actions(observation, deterministic=deterministic)

    def forward(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self._predict(observation, deterministic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        raise NotImplementedError(
            "AgentPolicy is saved through its algorithm (model.save) or its agent (model.agent.save), "
            "not with policy.save"
        )

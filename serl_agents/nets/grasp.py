"""HIL-SERL's grasp critic: Q-values of the discrete gripper choices, from the agent's feature vector.

An MLP trunk (SERL's `MLP`: Linear -> LayerNorm -> tanh per hidden layer) and a linear head with one
output per choice, initialised like every SERL head (Xavier-uniform weights, zero biases).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from serl_agents.nets.mlp import MLP, MLPConfig, xavier_init_


class GraspCritic(nn.Module):
    """features (B, D) -> Q-values (B, num_choices)."""

    def __init__(
        self,
        feature_dim: int,
        config: MLPConfig,
        num_choices: int = 3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if num_choices < 2:
            raise ValueError(f"num_choices must be >= 2, got {num_choices}")
        self.trunk = MLP(feature_dim, config, generator)
        self.head = nn.Linear(self.trunk.output_dim, num_choices)
        xavier_init_(self.head.weight, self.head.bias, generator)

    def forward(self, features: Tensor) -> Tensor:
        return self.head(self.trunk(features)).float()  # float32 even under autocast: argmax ties matter

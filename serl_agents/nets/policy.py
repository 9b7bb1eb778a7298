"""Policy heads: SERL's Gaussian policy (tanh-squashed for SAC/DrQ, plain for BC) and a deterministic head.

The sampling noise is an *input* (`rsample(noise)`), not drawn inside the network: the agent draws it
from its own `torch.Generator`, which keeps training reproducible and lets `torch.compile` trace the
update without a random-number side effect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from serl_agents.nets.mlp import MLP, MLPConfig, xavier_init_

STD_PARAMETERIZATIONS = ("exp", "softplus")
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
_LOG_TWO = math.log(2.0)


def tanh_log_det_jacobian(pre_tanh: Tensor) -> Tensor:
    """log(1 - tanh(u)^2) summed over the last dim, in the overflow-free form 2(log 2 - u - softplus(-2u))."""
    return (2.0 * (_LOG_TWO - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)


class ActionDistribution:
    """A diagonal Gaussian over actions, optionally pushed through tanh (SERL's `TanhMultivariateNormalDiag`)."""

    def __init__(self, mean: Tensor, std: Tensor, tanh_squash: bool):
        self.mean = mean
        self.std = std
        self.tanh_squash = tanh_squash

    def mode(self) -> Tensor:
        """The deterministic action (SERL's `argmax=True`)."""
        return torch.tanh(self.mean) if self.tanh_squash else self.mean

    def rsample(self, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterised sample from standard-normal `noise` (same shape as the mean) and its log-prob."""
        pre_tanh = self.mean + self.std * noise
        log_prob = (-0.5 * noise.square() - self.std.log() - _HALF_LOG_TWO_PI).sum(-1)
        if not self.tanh_squash:
            return pre_tanh, log_prob
        return torch.tanh(pre_tanh), log_prob - tanh_log_det_jacobian(pre_tanh)

    def log_prob(self, actions: Tensor) -> Tensor:
        """Log-density of given actions (for BC's maximum likelihood); squashed actions are un-tanh'd,
        clipped just inside (-1, 1) so demo actions at the bounds stay finite."""
        pre_tanh = torch.atanh(actions.clamp(-1.0 + 1e-6, 1.0 - 1e-6)) if self.tanh_squash else actions
        z = (pre_tanh - self.mean) / self.std
        log_prob = (-0.5 * z.square() - self.std.log() - _HALF_LOG_TWO_PI).sum(-1)
        return log_prob - tanh_log_det_jacobian(pre_tanh) if self.tanh_squash else log_prob


class GaussianPolicy(nn.Module):
    """MLP trunk -> mean and std heads; std = exp(head) or softplus(head), clipped to [std_min, std_max]."""

    def __init__(
        self,
        feature_dim: int,
        action_dim: int,
        config: MLPConfig,
        tanh_squash: bool = True,
        std_parameterization: str = "exp",
        std_min: float = 1e-5,
        std_max: float = 5.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if std_parameterization not in STD_PARAMETERIZATIONS:
            raise ValueError(
                f"std_parameterization must be one of {STD_PARAMETERIZATIONS}, got {std_parameterization!r}"
            )
        if not 0.0 < std_min < std_max:
            raise ValueError(f"need 0 < std_min < std_max, got std_min={std_min}, std_max={std_max}")
        self.trunk = MLP(feature_dim, config, generator)
        self.mean_head = nn.Linear(self.trunk.output_dim, action_dim)
        self.std_head = nn.Linear(self.trunk.output_dim, action_dim)
        xavier_init_(self.mean_head.weight, self.mean_head.bias, generator)
        xavier_init_(self.std_head.weight, self.std_head.bias, generator)
        self.tanh_squash = tanh_squash
        self.std_parameterization = std_parameterization
        self.std_min = std_min
        self.std_max = std_max

    def forward(self, features: Tensor) -> ActionDistribution:
        h = self.trunk(features)
        raw_std = self.std_head(h)
        raw_std = raw_std.float()  # float32 even under autocast: log-probs need the precision
        std = raw_std.exp() if self.std_parameterization == "exp" else F.softplus(raw_std)
        mean = self.mean_head(h).float()
        return ActionDistribution(mean, std.clamp(self.std_min, self.std_max), self.tanh_squash)


class DeterministicPolicy(nn.Module):
    """MLP trunk -> action, tanh-bounded to [-1, 1] by default (BC with an MSE loss)."""

    def __init__(
        self,
        feature_dim: int,
        action_dim: int,
        config: MLPConfig,
        tanh_output: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.trunk = MLP(feature_dim, config, generator)
        self.head = nn.Linear(self.trunk.output_dim, action_dim)
        xavier_init_(self.head.weight, self.head.bias, generator)
        self.tanh_output = tanh_output

    def forward(self, features: Tensor) -> Tensor:
        actions = self.head(self.trunk(features)).float()
        return torch.tanh(actions) if self.tanh_output else actions

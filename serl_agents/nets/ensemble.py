"""A critic ensemble computed as one batched MLP: every layer is a single `torch.baddbmm` over stacked weights.

SERL's recipe uses 10 critics of which 2 random ones form the target (REDQ). Stacking the members'
weights into (N, in, out) tensors runs the whole ensemble in one matmul per layer instead of N module
calls, and lets a subset of members be evaluated by indexing the stacked weights (`members=`), which
is how the target evaluates only the M chosen critics. The saving is the per-critic launch overhead:
large on a GPU, about 10% of an update on a CPU at [256, 256] x batch 256, where the matmuls dominate
(measured in benchmarks/README_agents.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from serl_agents.nets.mlp import MLPConfig, xavier_init_

# In-place where torch has it: the ensemble's activations are large (N x B x width) and each saved
# allocation is a pass over memory that does not fit in cache. Keys match `mlp.ACTIVATIONS`.
INPLACE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh_,
    "relu": torch.relu_,
    "gelu": F.gelu,
    "silu": partial(F.silu, inplace=True),
    "elu": partial(F.elu, inplace=True),
    "leaky_relu": partial(F.leaky_relu, inplace=True),
}


class EnsembleMLP(nn.Module):
    """N independent MLPs `in_dim -> hidden_dims -> out_dim` with stacked parameters.

    Each member computes exactly what an `MLP` + output Linear with its weights computes (same layer
    order, same init distribution). Input (B, in_dim) is shared by all members; output is (n, B, out_dim).
    """

    def __init__(
        self,
        num_members: int,
        in_dim: int,
        out_dim: int,
        config: MLPConfig,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {num_members}")
        self.num_members = num_members
        self.config = config
        self.activation = INPLACE_ACTIVATIONS[config.activations]
        self.dropout = nn.Dropout(config.dropout_rate) if config.dropout_rate > 0 else None
        dims = [in_dim, *config.hidden_dims, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            weight = nn.Parameter(torch.empty(num_members, d_in, d_out))
            bias = nn.Parameter(torch.empty(num_members, 1, d_out))
            xavier_init_(weight, bias, generator)
            self.weights.append(weight)
            self.biases.append(bias)
        self.norm_scales = nn.ParameterList()
        self.norm_shifts = nn.ParameterList()
        if config.use_layer_norm:
            for width in config.hidden_dims:
                self.norm_scales.append(nn.Parameter(torch.ones(num_members, 1, width)))
                self.norm_shifts.append(nn.Parameter(torch.zeros(num_members, 1, width)))

    def forward(self, x: Tensor, members: Tensor | None = None, detach_params: bool = False) -> Tensor:
        """Evaluate all members, or only `members` (a 1-D index tensor) by gathering their weights.

        `detach_params=True` lets gradients reach `x` but not the weights: the actor's loss reads
        Q(s, pi(s)) without training the critic and without computing weight gradients.
        """

        def take(param: Tensor) -> Tensor:
            param = param if members is None else param[members]
            return param.detach() if detach_params else param

        n = self.num_members if members is None else members.shape[0]
        h = x.unsqueeze(0).expand(n, *x.shape)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(take(bias), h, take(weight))
            if i == last:
                break
            if self.dropout is not None:
                h = self.dropout(h)
            if self.config.use_layer_norm:
                h = F.layer_norm(h, h.shape[-1:])
                h = torch.addcmul(take(self.norm_shifts[i]), h, take(self.norm_scales[i]))
            h = self.activation(h)
        return h


class CriticEnsemble(nn.Module):
    """Q(s, a) for N critics at once: (B, F) features and (B, A) actions -> (n, B) Q-values."""

    def __init__(
        self,
        num_critics: int,
        feature_dim: int,
        action_dim: int,
        config: MLPConfig,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, feature_dim + action_dim, 1, config, generator)

    def forward(
        self, features: Tensor, actions: Tensor, members: Tensor | None = None, detach_params: bool = False
    ) -> Tensor:
        x = torch.cat([features, actions], dim=-1)
        # float32 out even under autocast, so losses and targets are computed at full precision.
        return self.net(x, members=members, detach_params=detach_params).squeeze(-1).float()

"""The MLP used by every SERL head: Linear → (Dropout) → (LayerNorm) → activation, per hidden layer.

Layer order and initialisation (Xavier-uniform weights, zero biases) follow SERL's `MLP`
(`serl_launcher/networks/mlp.py`), so recipes tuned there carry over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


@dataclass(frozen=True)
class MLPConfig:
    """An MLP's shape; field names are SERL's `network_kwargs` keys so SERL launch code ports as is."""

    hidden_dims: tuple[int, ...] = (256, 256)  # width of each hidden layer
    activations: str = "tanh"  # one of ACTIVATIONS (SERL's key name; a string here, not a function)
    use_layer_norm: bool = True  # LayerNorm before each activation (SERL's SAC/DrQ recipe)
    dropout_rate: float = 0.0  # dropout after each hidden Linear (0 disables)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_dims", tuple(int(d) for d in self.hidden_dims))
        if not self.hidden_dims or any(d < 1 for d in self.hidden_dims):
            raise ValueError(f"hidden_dims must be a non-empty list of positive ints, got {self.hidden_dims}")
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {sorted(ACTIVATIONS)}, got {self.activations!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")

    @classmethod
    def from_kwargs(cls, kwargs: dict | MLPConfig | None, **defaults: object) -> MLPConfig:
        """Build from SERL-style `network_kwargs`; `defaults` fill keys the user left out."""
        if isinstance(kwargs, MLPConfig):
            return kwargs
        merged = {**defaults, **(kwargs or {})}
        unknown = sorted(set(merged) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown network kwargs {unknown}; expected keys from {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**merged)


def xavier_init_(weight: Tensor, bias: Tensor | None, generator: torch.Generator | None) -> None:
    """SERL's `default_init`: Xavier-uniform weight over the last two dims (a stacked ensemble's
    members are initialised independently), zero bias."""
    bound = (6.0 / (weight.shape[-1] + weight.shape[-2])) ** 0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)
        if bias is not None:
            bias.zero_()


class MLP(nn.Module):
    """Hidden layers only (`activate_final=True` in SERL terms); heads add their own output Linear."""

    def __init__(self, in_dim: int, config: MLPConfig, generator: torch.Generator | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        for width in config.hidden_dims:
            linear = nn.Linear(in_dim, width)
            xavier_init_(linear.weight, linear.bias, generator)
            layers.append(linear)
            if config.dropout_rate > 0:
                layers.append(nn.Dropout(config.dropout_rate))
            if config.use_layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(ACTIVATIONS[config.activations]())
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.output_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

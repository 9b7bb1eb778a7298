"""Pooling heads: a (B, C, H, W) feature map becomes a (B, D) vector.

SERL's image encoders (`serl_launcher/vision/resnet_v1.py`) end in one of these before their Dense
bottleneck. Each head exposes `output_dim` so the bottleneck can be sized without a dry run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POOLING_METHODS = ("spatial_learned_embeddings", "spatial_softmax", "avg")


class SpatialLearnedEmbeddings(nn.Module):
    """SERL's `SpatialLearnedEmbeddings`: `num_features` learned weightings of every position per channel.

    The kernel has SERL's layout (H, W, C, num_features), so weights converted from SERL load as is.
    Unlike average pooling it keeps *where* things are, which manipulation needs; SERL then applies
    Dropout(0.1), kept here as `dropout`.
    """

    def __init__(self, channels: int, height: int, width: int, num_features: int = 8, dropout: float = 0.1):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.kernel = nn.Parameter(torch.empty(height, width, channels, num_features))
        # flax's lecun_normal on SERL's 4-D kernel: fan_in = H * W * C.
        nn.init.trunc_normal_(self.kernel, std=1.0 / math.sqrt(height * width * channels))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = channels * num_features

    def forward(self, features: Tensor) -> Tensor:
        # (B, C, H, W) x (H, W, C, F) summed over space -> (B, C, F); flattened channel-major as SERL does.
        pooled = torch.einsum("bchw,hwcf->bcf", features, self.kernel)
        return self.dropout(pooled.flatten(1))


class SpatialSoftmax(nn.Module):
    """Keypoints: a softmax over space per channel, reduced to its expected (x, y) position.

    As SERL's pretrained-ResNet head (and lerobot's), a 1x1 convolution first maps the C channels to
    `num_keypoints` maps; the temperature is SERL's default of 1. Output: [x_1..x_K, y_1..y_K] in [-1, 1].
    """

    def __init__(self, channels: int, height: int, width: int, num_keypoints: int = 64):
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        self.keypoints = nn.Conv2d(channels, num_keypoints, kernel_size=1, bias=False)
        nn.init.kaiming_normal_(
            self.keypoints.weight, mode="fan_in", nonlinearity="relu"
        )  # flax kaiming_normal
        pos_y, pos_x = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        # Buffers follow the module across devices; not persistent because they are derived from the shape.
        self.register_buffer("pos_x", pos_x.reshape(-1), persistent=False)
        self.register_buffer("pos_y", pos_y.reshape(-1), persistent=False)
        self.output_dim = 2 * num_keypoints

    def forward(self, features: Tensor) -> Tensor:
        attention = torch.softmax(self.keypoints(features).flatten(2), dim=-1)  # (B, K, H*W)
        expected_x = attention @ self.pos_x
        expected_y = attention @ self.pos_y
        return torch.cat([expected_x, expected_y], dim=-1)


class AvgPool(nn.Module):
    """Global average over space: SERL's `pool_method="avg"` (what its DrQ "small" encoder uses)."""

    def __init__(self, channels: int):
        super().__init__()
        self.output_dim = channels

    def forward(self, features: Tensor) -> Tensor:
        return features.mean(dim=(-2, -1))


def make_pooling(
    name: str,
    channels: int,
    height: int,
    width: int,
    num_spatial_blocks: int = 8,
    num_keypoints: int = 64,
    dropout: float = 0.1,
) -> nn.Module:
    """Build the pooling head `name` for a (channels, height, width) feature map.

    `num_spatial_blocks` and `dropout` apply to "spatial_learned_embeddings", `num_keypoints` to
    "spatial_softmax"; SERL's defaults (8 blocks, Dropout 0.1, 64 keypoints).
    """
    if name == "spatial_learned_embeddings":
        return SpatialLearnedEmbeddings(channels, height, width, num_spatial_blocks, dropout)
    if name == "spatial_softmax":
        return SpatialSoftmax(channels, height, width, num_keypoints)
    if name == "avg":
        return AvgPool(channels)
    raise ValueError(f"unknown pooling {name!r}; expected one of {', '.join(POOLING_METHODS)}")

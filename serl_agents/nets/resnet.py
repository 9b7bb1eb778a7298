"""ResNetV1 backbone as in SERL's `serl_launcher/vision/resnet_v1.py` (ResNet-10 = stage sizes 1,1,1,1).

SERL's pretrained default encoder is this network with GroupNorm (4 groups, eps 1e-5), bias-free
convolutions, He-normal init and ImageNet mean/std input normalisation. Convolutions pad like flax's
"SAME" (asymmetric for stride 2), so weights converted from SERL's `resnet10_params.pkl` give the same
features; nothing is downloaded here, `load_pretrained` reads a file the user supplies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """flax/TF "SAME": output ceil(size / stride), the odd padding pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Bias-free Conv2d with flax's "SAME" padding (PyTorch's padding="same" refuses stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False)
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        kernel, stride = self.kernel_size[0], self.stride[0]
        top, bottom = _same_padding(x.shape[-2], kernel, stride)
        left, right = _same_padding(x.shape[-1], kernel, stride)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class BasicBlock(nn.Module):
    """SERL's `ResNetBlock`: two 3x3 convs, a 1x1 projection when the shape changes, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_groups: int):
        super().__init__()
        self.conv1 = SameConv2d(in_channels, out_channels, 3, stride)
        self.norm1 = nn.GroupNorm(num_groups, out_channels, eps=1e-5)
        self.conv2 = SameConv2d(out_channels, out_channels, 3)
        self.norm2 = nn.GroupNorm(num_groups, out_channels, eps=1e-5)
        self.projection: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Sequential(
                SameConv2d(in_channels, out_channels, 1, stride),
                nn.GroupNorm(num_groups, out_channels, eps=1e-5),
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        residual = x if self.projection is None else self.projection(x)
        return F.relu(residual + y)


class ResNetV1(nn.Module):
    """ResNetV1 on (B, 3, H, W) floats in [0, 1]; returns the (B, C, H/32, W/32) map or, without
    `pre_pooling`, its (B, C) spatial mean.

    Args:
        stage_sizes: blocks per stage; (1, 1, 1, 1) is SERL's ResNet-10.
        num_filters: width of the first stage, doubled per stage (64 -> 512 as SERL).
        num_groups: GroupNorm groups (SERL: 4; GroupNorm has no batch statistics to go stale in RL).
        pre_pooling: return the feature map before pooling, for a learned pooling head (SERL's
            `pre_pooling=True` for its pretrained encoder); False averages over space as ImageNet ResNets do.
    """

    def __init__(
        self,
        stage_sizes: Sequence[int] = (1, 1, 1, 1),
        num_filters: int = 64,
        num_groups: int = 4,
        pre_pooling: bool = True,
    ):
        super().__init__()
        self.pre_pooling = pre_pooling
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.stem_conv = nn.Conv2d(3, num_filters, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.stem_conv.weight, mode="fan_in", nonlinearity="relu")
        self.stem_norm = nn.GroupNorm(num_groups, num_filters, eps=1e-5)
        blocks = []
        channels = num_filters
        for stage, size in enumerate(stage_sizes):
            width = num_filters * 2**stage
            for index in range(size):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride, num_groups))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = channels
        # Stride-2 steps: the stem conv, the max pool and the first block of every later stage.
        self.num_downsamples = 2 + (len(stage_sizes) - 1)

    def output_shape(self, height: int, width: int) -> tuple[int, ...]:
        """(C, h, w) of the output for an image of (height, width), or (C,) without pre_pooling."""
        for _ in range(self.num_downsamples):
            height, width = -(-height // 2), -(-width // 2)
        return (self.out_channels, height, width) if self.pre_pooling else (self.out_channels,)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        x = F.relu(self.stem_norm(self.stem_conv(x)))
        top, bottom = _same_padding(x.shape[-2], 3, 2)
        left, right = _same_padding(x.shape[-1], 3, 2)
        x = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), kernel_size=3, stride=2)
        x = self.blocks(x)
        return x if self.pre_pooling else x.mean(dim=(-2, -1))

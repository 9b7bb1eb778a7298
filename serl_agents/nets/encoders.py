"""Image encoders: channel-last uint8 camera images (B, H, W, 3) -> feature vectors (B, D).

Follows SERL's `serl_launcher/vision`: a convolutional backbone, a pooling head, then SERL's
bottleneck Dense(256) -> LayerNorm -> tanh, which bounds features so the actor/critic MLPs see a
stable scale whatever the backbone. One encoder per camera, joined by `MultiCameraEncoder`, as
SERL's DrQ builds one encoder per image key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from serl_agents.nets.pooling import make_pooling
from serl_agents.nets.resnet import ResNetV1


def check_image_shape(shape: Sequence[int], image_shape: tuple[int, int, int], name: str) -> None:
    """Raise a ValueError naming `name` unless `shape` is (batch..., H, W, 3) for `image_shape`."""
    if len(shape) < 4 or tuple(shape[-3:]) != tuple(image_shape):
        height, width, channels = image_shape
        raise ValueError(f"{name} has shape {tuple(shape)}; expected (batch, {height}, {width}, {channels})")


class SmallConvNet(nn.Module):
    """SERL's "small" DrQ backbone: 3x3 stride-2 convs of 32/64/128/256 with "VALID" padding and ReLU.

    Cheap enough to train from scratch on a CPU, which is why SERL offers it next to the ResNet.
    `features` sets the channels of each conv (one conv per entry); the drq-cpu preset halves them.
    """

    def __init__(self, features: Sequence[int] = (32, 64, 128, 256)):
        super().__init__()
        if not features or any(not isinstance(width, int) or width < 1 for width in features):
            raise ValueError(f"features must be a non-empty sequence of channel counts >= 1, got {features!r}")
        layers: list[nn.Module] = []
        in_channels = 3
        for out_channels in features:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2), nn.ReLU()]
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_channels
        self.num_layers = len(features)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(C, h, w) of the feature map for an image of (height, width)."""
        for _ in range(self.num_layers):
            height, width = (height - 3) // 2 + 1, (width - 3) // 2 + 1
        return self.out_channels, height, width

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


class ImageEncoder(nn.Module):
    """Backbone -> pooling head -> Linear(bottleneck_dim) -> LayerNorm -> tanh, on channel-last images.

    Accepts uint8 images (divided by 255 inside, as SERL) or floats already in [0, 1], as tensors on
    the encoder's device or numpy arrays; any number of leading batch dims.

    Args:
        backbone: maps (N, 3, H, W) floats in [0, 1] to (N, C, h, w) (or (N, C) if it pools itself) and
            has `output_shape(height, width)`.
        image_shape: (H, W, 3) of the images this encoder accepts.
        pooling: "spatial_learned_embeddings" (SERL's default for its ResNet; keeps where things are),
            "spatial_softmax" (keypoints) or "avg". Must be "avg" if the backbone already pools.
        bottleneck_dim: output size D (SERL: 256).
        num_spatial_blocks: learned embeddings per channel for "spatial_learned_embeddings" (SERL: 8).
        num_keypoints: keypoints for "spatial_softmax" (SERL's pretrained head: 64).
        dropout: dropout after "spatial_learned_embeddings" (SERL: 0.1); off in `eval()` mode.
        freeze: keep the backbone fixed (SERL freezes its ImageNet-pretrained ResNet); its parameters
            get requires_grad=False and it runs without autograd even if they are re-enabled.
    """

    def __init__(
        self,
        backbone: nn.Module,
        image_shape: tuple[int, int, int],
        pooling: str = "spatial_learned_embeddings",
        bottleneck_dim: int = 256,
        num_spatial_blocks: int = 8,
        num_keypoints: int = 64,
        dropout: float = 0.1,
        freeze: bool = False,
    ):
        super().__init__()
        if len(image_shape) != 3 or image_shape[2] != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, 3) with H, W >= 1, got {tuple(image_shape)}")
        if bottleneck_dim < 1:
            raise ValueError(f"bottleneck_dim must be >= 1, got {bottleneck_dim}")
        self.image_shape = tuple(int(size) for size in image_shape)
        self.backbone = backbone
        self.freeze = freeze
        if freeze:
            backbone.requires_grad_(False)
        feature_shape = backbone.output_shape(self.image_shape[0], self.image_shape[1])
        if min(feature_shape) < 1:
            raise ValueError(
                f"image_shape {self.image_shape} is too small for {type(backbone).__name__}: "
                f"its feature map would be {feature_shape}"
            )
        if len(feature_shape) == 1:
            if pooling != "avg":
                raise ValueError(
                    f"{type(backbone).__name__} already averages over space (pre_pooling=False); "
                    f"pooling must be 'avg', got {pooling!r}"
                )
            self.pool: nn.Module = nn.Identity()
            pooled_dim = feature_shape[0]
        else:
            self.pool = make_pooling(pooling, *feature_shape, num_spatial_blocks, num_keypoints, dropout)
            pooled_dim = self.pool.output_dim
        self.bottleneck = nn.Linear(pooled_dim, bottleneck_dim)
        self.norm = nn.LayerNorm(bottleneck_dim)
        self.output_dim = bottleneck_dim

    def forward(self, images: Tensor | np.ndarray) -> Tensor:
        weight = self.bottleneck.weight
        images = torch.as_tensor(images, device=weight.device if isinstance(images, np.ndarray) else None)
        check_image_shape(images.shape, self.image_shape, "images")
        batch_shape = images.shape[:-3]
        x = images.reshape(-1, *self.image_shape).permute(0, 3, 1, 2)
        if x.dtype == torch.uint8:
            x = x.to(weight.dtype).div_(255.0)  # in place: one float copy of the batch, not two
        elif x.is_floating_point():
            x = x.to(weight.dtype)
        else:
            raise ValueError(f"images must be uint8 or floating point in [0, 1], got {images.dtype}")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            features = self.backbone(x)
        features = torch.tanh(self.norm(self.bottleneck(self.pool(features))))
        return features.reshape(*batch_shape, self.output_dim)


def _small(
    image_shape: tuple[int, int, int], features: Sequence[int] = (32, 64, 128, 256), **head_kwargs
) -> ImageEncoder:
    return ImageEncoder(SmallConvNet(features), image_shape, **head_kwargs)


def _resnet10(image_shape: tuple[int, int, int], pre_pooling: bool = True, **head_kwargs) -> ImageEncoder:
    return ImageEncoder(ResNetV1((1, 1, 1, 1), pre_pooling=pre_pooling), image_shape, **head_kwargs)


ENCODERS: dict[str, Callable[..., ImageEncoder]] = {"small": _small, "resnet10": _resnet10}


def make_encoder(name: str, image_shape: tuple[int, int, int] = (128, 128, 3), **kwargs) -> nn.Module:
    """Build encoder `name` ("small" or "resnet10") for images of `image_shape`.

    kwargs go to `ImageEncoder` (pooling, bottleneck_dim, num_spatial_blocks, num_keypoints, dropout,
    freeze); "small" also takes `features` (channels per conv, see `SmallConvNet`), "resnet10" `pre_pooling`
    (see `ResNetV1`). SERL's "small" DrQ call uses
    pool_method="avg"; here both default to spatial_learned_embeddings, the spatial_block_size=8 SERL
    passes in that same call, because average pooling discards object positions. Pass pooling="avg"
    for exact parity. SERL's pretrained default is `make_encoder("resnet10", freeze=True)` after
    `load_pretrained(encoder.backbone, file)`: its pre_pooling=True also stops gradients, which is
    `freeze` here.
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
    return ENCODERS[name](tuple(image_shape), **kwargs)


class MultiCameraEncoder(nn.Module):
    """One encoder per camera key; features concatenated in the insertion order of `encoders`.

    Each encoder needs `image_shape` and `output_dim` (those from `make_encoder` have them).
    Other observation keys (e.g. "state") are ignored here.
    """

    def __init__(self, encoders: Mapping[str, nn.Module]):
        super().__init__()
        if not encoders:
            raise ValueError("MultiCameraEncoder needs at least one camera encoder")
        for key, encoder in encoders.items():
            if "." in key or not key:
                raise ValueError(f"camera key {key!r} must be non-empty and contain no '.'")
            if not hasattr(encoder, "image_shape") or not hasattr(encoder, "output_dim"):
                raise ValueError(f"encoder for {key!r} needs `image_shape` and `output_dim` attributes")
        self.encoders = nn.ModuleDict(encoders)
        self.image_keys = tuple(encoders)
        self.output_dim = sum(int(encoder.output_dim) for encoder in encoders.values())

    def forward(self, obs: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        features = []
        for key, encoder in self.encoders.items():
            if key not in obs:
                raise ValueError(
                    f"observation lacks image key {key!r}; expected keys {list(self.image_keys)}"
                )
            check_image_shape(np.shape(obs[key]), encoder.image_shape, f"image {key!r}")
            features.append(encoder(obs[key]))
        return torch.cat(features, dim=-1)


def load_pretrained(encoder: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load weights from a user-supplied .pt/.pth (weights_only) or .safetensors file; never downloads.

    For a backbone-only file (e.g. converted ImageNet ResNet-10 weights) pass `encoder.backbone`.
    strict=True needs the file and the module to hold exactly the same keys; strict=False loads the
    keys both hold. Shapes must always match.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        state = torch.load(path, weights_only=True, map_location="cpu")
    elif suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        raise ValueError(f"unsupported weights file {path}: expected a .pt, .pth or .safetensors file")
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    own = encoder.state_dict()
    for key, tensor in own.items():
        if key not in state:
            if strict:
                raise ValueError(
                    f"{path}: key {key!r} of the encoder (shape {tuple(tensor.shape)}) is missing from the file"
                )
        elif state[key].shape != tensor.shape:
            raise ValueError(
                f"{path}: key {key!r} has shape {tuple(state[key].shape)} in the file "
                f"but {tuple(tensor.shape)} in the encoder"
            )
    unexpected = [key for key in state if key not in own]
    if strict and unexpected:
        key = unexpected[0]
        raise ValueError(
            f"{path}: key {key!r} (shape {tuple(state[key].shape)}) in the file is not in the encoder"
        )
    if len(unexpected) == len(state):
        raise ValueError(
            f"{path} shares no key with the encoder (first file key {next(iter(state), None)!r})"
        )
    encoder.load_state_dict({key: value for key, value in state.items() if key in own}, strict=False)

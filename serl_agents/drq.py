"""DrQ: SAC from pixels with random-shift augmentation, as SERL's `DrQAgent` (`make_drq_agent`).

What it adds to `SACAgent`: an image encoder per camera (`MultiCameraEncoder`), the proprioceptive
"state" embedded and appended to the image features, and random shifts (pad 4) of every camera
image of `observations` and `next_observations` before each update. The encoder is shared: the
critic's loss trains it, the actor reads its features detached (SERL's stop-gradient).

One deliberate difference from SERL: SERL's target critic carries its own Polyak-averaged copy of the
encoder, so each update encodes the next observations twice (online encoder for the next action,
target encoder for the target Q). Here, as in DrQ-v2, the next observations are encoded once by the
online encoder (without gradients) and only the Q heads have target copies: one image pass fewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from serl_agents.augment import augment_observations
from serl_agents.batch import STATE_KEY, Observation, ObsSpec, action_dim_of
from serl_agents.nets.encoders import ENCODERS, MultiCameraEncoder, make_encoder
from serl_agents.nets.mlp import MLPConfig, xavier_init_
from serl_agents.sac import SACAgent, SACConfig, make_config

CUSTOM_ENCODER = "custom"


@dataclass(frozen=True)
class VisionConfig:
    """How camera images (and the proprioceptive state) become a feature vector; shared by DrQ and BC."""

    image_keys: tuple[str, ...] = ()  # camera keys of the observation dict, in feature order
    encoder: str = "small"  # `make_encoder` name ("small", "resnet10"), or "custom" for a module you pass
    # passed to make_encoder (pooling, freeze, bottleneck_dim, ...)
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    augment_pad: int = 4  # random-shift padding in pixels (SERL: 4); 0 turns augmentation off
    use_proprio: bool = True  # append the "state" vector to the image features (SERL: True)
    proprio_latent_dim: int = 64  # state -> Linear -> LayerNorm -> tanh of this size (SERL); 0: raw state

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_keys", tuple(self.image_keys))
        if self.encoder not in (*ENCODERS, CUSTOM_ENCODER):
            raise ValueError(
                f"encoder must be one of {[*ENCODERS, CUSTOM_ENCODER]} or an nn.Module, got {self.encoder!r}"
            )
        if self.augment_pad < 0:
            raise ValueError(f"augment_pad must be >= 0, got {self.augment_pad}")
        if self.proprio_latent_dim < 0:
            raise ValueError(f"proprio_latent_dim must be >= 0, got {self.proprio_latent_dim}")


@dataclass(frozen=True)
class DrQConfig(SACConfig):
    """SAC hyperparameters plus vision; defaults are SERL's DrQ launcher recipe."""

    discount: float = 0.96  # SERL's real-robot DrQ runs use 0.96-0.97 (shorter effective horizon)
    vision: VisionConfig = VisionConfig(image_keys=("front", "wrist"))  # encoder "small": trains on a CPU


class PixelEncoder(nn.Module):
    """Per-camera image features concatenated, then the embedded "state" appended (SERL's EncodingWrapper)."""

    def __init__(
        self, cameras: nn.Module, state_dim: int | None, proprio_latent_dim: int, generator: torch.Generator
    ):
        super().__init__()
        if not isinstance(getattr(cameras, "output_dim", None), int):
            raise ValueError("the encoder module needs an int `output_dim` (its feature size)")
        self.cameras = cameras
        self.proprio: nn.Module | None = None
        extra = 0
        if state_dim is not None and proprio_latent_dim > 0:
            linear = nn.Linear(state_dim, proprio_latent_dim)
            xavier_init_(linear.weight, linear.bias, generator)
            self.proprio = nn.Sequential(linear, nn.LayerNorm(proprio_latent_dim), nn.Tanh())
            extra = proprio_latent_dim
        elif state_dim is not None:
            self.proprio = nn.Identity()
            extra = state_dim
        self.output_dim = cameras.output_dim + extra

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        features = self.cameras(obs)
        if self.proprio is None:
            return features
        return torch.cat([features, self.proprio(obs[STATE_KEY])], dim=-1)


def vision_spec(observations: Observation, vision: VisionConfig) -> ObsSpec:
    """The observation layout a pixel agent uses: its cameras, plus "state" if `use_proprio`."""
    if not vision.image_keys:
        raise ValueError("image_keys must name at least one camera, e.g. image_keys=('front', 'wrist')")
    if not isinstance(observations, Mapping):
        raise ValueError(f"pixel agents need dict observations with keys {list(vision.image_keys)}")
    spec = ObsSpec.from_example(observations, vision.image_keys)
    if vision.use_proprio and spec.state_dim is None:
        raise ValueError(f"use_proprio=True needs a {STATE_KEY!r} entry in the observations")
    return ObsSpec(
        state_dim=spec.state_dim if vision.use_proprio else None, image_shapes=spec.image_shapes, is_dict=True
    )


def build_pixel_encoder(
    vision: VisionConfig, spec: ObsSpec, seed: int, encoder: nn.Module | None
) -> PixelEncoder:
    """Camera encoders (built, or the given module) + proprio embedding, initialised from `seed`.

    The encoders' own initialisers draw from torch's global RNG, so they are built inside a forked
    RNG seeded with `seed`: reproducible, and the caller's global RNG state is left untouched.
    """
    if (encoder is None) != (vision.encoder != CUSTOM_ENCODER):
        raise ValueError(
            "this agent uses a custom encoder module: pass encoder=<module>"
            if encoder is None
            else f"got an encoder module but the config names encoder {vision.encoder!r}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if encoder is None:
            encoder = MultiCameraEncoder(
                {
                    key: make_encoder(vision.encoder, shape, **vision.encoder_kwargs)
                    for key, shape in spec.image_shapes
                }
            )
        generator = torch.Generator().manual_seed(seed + 2)
        return PixelEncoder(encoder, spec.state_dim, vision.proprio_latent_dim, generator)


def augment_batch(batch: dict[str, Any], vision: VisionConfig, generator: torch.Generator) -> dict[str, Any]:
    """Random-shift every camera of observations and next_observations (independent shifts)."""
    if vision.augment_pad == 0:
        return batch
    out = dict(batch)
    for key in ("observations", "next_observations"):
        if key in batch:
            out[key] = augment_observations(batch[key], vision.image_keys, vision.augment_pad, generator)
    return out


def vision_config(
    image_keys: Sequence[str],
    encoder: str | nn.Module,
    encoder_kwargs: Mapping[str, Any] | None,
    **options: Any,
) -> tuple[VisionConfig, nn.Module | None]:
    """VisionConfig from create-time arguments; a module `encoder` is kept aside (config says "custom")."""
    module = encoder if isinstance(encoder, nn.Module) else None
    name = CUSTOM_ENCODER if module is not None else encoder
    if module is not None and encoder_kwargs:
        raise ValueError("encoder_kwargs apply to a named encoder, not to an nn.Module encoder")
    vision = VisionConfig(
        image_keys=tuple(image_keys), encoder=name, encoder_kwargs=dict(encoder_kwargs or {}), **options
    )
    return vision, module


VISION_OPTIONS = ("augment_pad", "use_proprio", "proprio_latent_dim")


class DrQAgent(SACAgent):
    """SERL's `DrQAgent`: `create_drq(...)`, then the same `update` / `sample_actions` / `save` / `load`."""

    config_class = DrQConfig

    @classmethod
    def create_drq(
        cls,
        observations: Mapping[str, Tensor | np.ndarray],
        actions: Tensor | np.ndarray,
        image_keys: Sequence[str] = ("front", "wrist"),
        encoder: str | nn.Module = "small",
        encoder_kwargs: Mapping[str, Any] | None = None,
        critic_network_kwargs: Mapping[str, Any] | None = None,
        policy_network_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        **config_kwargs: Any,
    ) -> DrQAgent:
        """DrQ on dict observations: uint8 (H, W, 3) images under `image_keys` (+ "state").

        `encoder` is a `make_encoder` name or a module mapping the observation dict to (B, D) features
        with an `output_dim` attribute (e.g. a `MultiCameraEncoder` with pretrained weights loaded).
        Other keyword arguments: `augment_pad`, `use_proprio`, `proprio_latent_dim`, and `DrQConfig` fields.
        """
        vision_options = {key: config_kwargs.pop(key) for key in VISION_OPTIONS if key in config_kwargs}
        vision, module = vision_config(image_keys, encoder, encoder_kwargs, **vision_options)
        config = make_config(
            cls.config_class,
            config_kwargs,
            vision=vision,
            critic_network=MLPConfig.from_kwargs(critic_network_kwargs),
            policy_network=MLPConfig.from_kwargs(policy_network_kwargs),
        )
        spec = vision_spec(observations, vision)
        return cls._build(config, spec, action_dim_of(actions), torch.device(device), seed, module)

    @classmethod
    def _build(
        cls,
        config: DrQConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        device: torch.device,
        seed: int,
        encoder: nn.Module | None,
    ) -> DrQAgent:
        return cls(
            config,
            obs_spec,
            action_dim,
            build_pixel_encoder(config.vision, obs_spec, seed, encoder),
            device,
            seed,
        )

    def _augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        return augment_batch(batch, self.config.vision, self.rngs["train"])

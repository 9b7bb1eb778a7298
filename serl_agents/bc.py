"""Behaviour cloning, as SERL's `BCAgent` (`make_bc_agent`): regress demo actions from observations.

Two losses: "mle" fits SERL's Gaussian policy (not tanh-squashed, exp std) by maximum likelihood;
"mse" fits a deterministic tanh-bounded policy by mean squared error. Observations are states or
pixels (the same encoders and random-shift augmentation as DrQ); the encoder is trained by the BC loss.

`normalize_observations` (not in SERL) standardises the "state" vector with the demos' per-dimension mean
and std (`fit_normalization`), kept in the checkpoint. It matters on the sim tasks: PickCube's states
spread by only 0.02-0.12 per dimension, and the cube-to-gripper offset the policy must read is a
difference of centimetres between two such inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from serl_agents.batch import (
    Observation,
    ObsSpec,
    UpdateInfo,
    action_dim_of,
    format_actions,
    prepare_batch,
    prepare_obs,
)
from serl_agents.checkpoint import CheckpointMixin
from serl_agents.drq import (
    VISION_OPTIONS,
    VisionConfig,
    augment_batch,
    build_pixel_encoder,
    vision_config,
    vision_spec,
)
from serl_agents.nets.mlp import MLPConfig
from serl_agents.nets.policy import STD_PARAMETERIZATIONS, DeterministicPolicy, GaussianPolicy
from serl_agents.sac import (
    StateEncoder,
    agent_generators,
    apply_gradients,
    check_schedule,
    draw_actions,
    evaluation_mode,
    fused_adam_available,
    has_dropout,
    make_config,
    seeded_dropout,
    set_learning_rates,
)

BC_LOSSES = ("mle", "mse")


@dataclass(frozen=True)
class BCConfig:
    """BC hyperparameters; defaults are SERL's `make_bc_agent`."""

    policy_network: MLPConfig = MLPConfig(use_layer_norm=False)  # SERL BC: [256, 256], tanh, no LayerNorm
    loss: str = "mle"  # "mle": Gaussian log-likelihood (SERL); "mse": deterministic policy, squared error
    tanh_squash: bool = False  # squash the Gaussian (mle) through tanh; SERL's BC Gaussian is not squashed
    std_parameterization: str = "exp"  # std = exp(head) or softplus(head) (mle only)
    std_min: float = 1e-5  # std clipped to [std_min, std_max] (mle only)
    std_max: float = 5.0
    lr: float = 3e-4  # Adam learning rate
    lr_warmup_steps: int = 0  # linear learning-rate warmup over this many updates; 0: none
    lr_decay_steps: int = 0  # cosine decay to 0 over this many updates after warmup; 0: constant
    max_grad_norm: float | None = None  # gradient-norm clipping; None: off
    vision: VisionConfig | None = None  # cameras and encoder; None: state observations only
    check_finite: bool = True  # reject batches with NaN/inf (one host sync per update)
    compile: bool = False  # torch.compile the loss computation
    amp: bool = False  # autocast: bfloat16 on CPU, float16 with a GradScaler on CUDA
    # standardise obs["state"] with the demos' mean/std (fit_normalization, else the first update's batch)
    normalize_observations: bool = False

    def __post_init__(self) -> None:
        if self.loss not in BC_LOSSES:
            raise ValueError(f"loss must be one of {BC_LOSSES}, got {self.loss!r}")
        if self.std_parameterization not in STD_PARAMETERIZATIONS:
            raise ValueError(
                f"std_parameterization must be one of {STD_PARAMETERIZATIONS}, got {self.std_parameterization!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_schedule(self.lr_warmup_steps, self.lr_decay_steps, self.max_grad_norm)


def mle_loss(policy: GaussianPolicy, features: Tensor, actions: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Negative log-likelihood of the demo actions under the policy's Gaussian."""
    dist = policy(features)
    loss = -dist.log_prob(actions).mean()
    mse = (dist.mode() - actions).square().sum(-1).mean()
    return loss, {"actor_loss": loss, "mse": mse, "mean_std": dist.std.mean()}


def mse_loss(
    policy: DeterministicPolicy, features: Tensor, actions: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Squared error between predicted and demo actions, summed over action dims, mean over the batch."""
    mse = (policy(features) - actions).square().sum(-1).mean()
    return mse, {"actor_loss": mse, "mse": mse}


class BCAgent(CheckpointMixin, nn.Module):
    """`BCAgent.create(...)`, `update(batch)` with observations + actions, `sample_actions`, `save`/`load`."""

    config_class = BCConfig

    def __init__(
        self,
        config: BCConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        encoder: nn.Module,
        device: torch.device | str,
        seed: int,
    ):
        super().__init__()
        self.config = config
        self.obs_spec = obs_spec
        self.action_dim = action_dim
        self.seed = seed
        self.step = 0
        self.device = torch.device(device)
        init_rng = torch.Generator().manual_seed(seed)
        self.encoder = encoder
        if config.normalize_observations and obs_spec.state_dim is not None:
            # buffers, so the statistics travel in state_dict / checkpoints; only when normalising, so
            # checkpoints written before this option existed (normalize_observations=False) still load
            self.register_buffer("obs_mean", torch.zeros(obs_spec.state_dim))
            self.register_buffer("obs_std", torch.ones(obs_spec.state_dim))
            self.register_buffer("obs_fitted", torch.tensor(False))
        if config.loss == "mle":
            self.policy: nn.Module = GaussianPolicy(
                encoder.output_dim,
                action_dim,
                config.policy_network,
                tanh_squash=config.tanh_squash,
                std_parameterization=config.std_parameterization,
                std_min=config.std_min,
                std_max=config.std_max,
                generator=init_rng,
            )
        else:
            self.policy = DeterministicPolicy(
                encoder.output_dim, action_dim, config.policy_network, generator=init_rng
            )
        self.to(self.device)
        params = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            [{"params": params, "lr": config.lr, "base_lr": config.lr}],
            fused=fused_adam_available(self.device),
        )
        self.rngs = agent_generators(self.device, seed)
        use_scaler = config.amp and self.device.type == "cuda"
        self.grad_scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self._amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self._has_dropout = has_dropout(self)
        self._loss = torch.compile(self._compute_loss) if config.compile else self._compute_loss

    @classmethod
    def create(
        cls,
        observations: Observation,
        actions: Tensor | np.ndarray,
        image_keys: Sequence[str] = (),
        encoder: str | nn.Module = "small",
        encoder_kwargs: Mapping[str, Any] | None = None,
        policy_network_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        **config_kwargs: Any,
    ) -> BCAgent:
        """BC on states (no `image_keys`) or pixels (`image_keys` + `encoder`, as `DrQAgent.create_drq`).

        `policy_network_kwargs` default to SERL's BC MLP (tanh, no LayerNorm); other keyword arguments
        are `BCConfig` fields or the vision options `augment_pad`, `use_proprio`, `proprio_latent_dim`.
        """
        vision_options = {key: config_kwargs.pop(key) for key in VISION_OPTIONS if key in config_kwargs}
        policy_network = MLPConfig.from_kwargs(policy_network_kwargs, use_layer_norm=False)
        if image_keys:
            vision, module = vision_config(image_keys, encoder, encoder_kwargs, **vision_options)
            spec = vision_spec(observations, vision)
        else:
            if vision_options or encoder_kwargs or isinstance(encoder, nn.Module):
                raise ValueError("encoder options need image_keys (the camera keys to encode)")
            vision, module = None, None
            spec = ObsSpec.from_example(observations)
            if spec.state_dim is None:
                raise ValueError("BC on states needs a 'state' observation; pass image_keys for pixels")
            spec = ObsSpec(state_dim=spec.state_dim, image_shapes=(), is_dict=spec.is_dict)
        config = make_config(cls.config_class, config_kwargs, policy_network=policy_network, vision=vision)
        return cls._build(config, spec, action_dim_of(actions), torch.device(device), seed, module)

    @classmethod
    def _build(
        cls,
        config: BCConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        device: torch.device,
        seed: int,
        encoder: nn.Module | None,
    ) -> BCAgent:
        if config.vision is None:
            if encoder is not None:
                raise ValueError("a state-based BCAgent takes no encoder module")
            return cls(config, obs_spec, action_dim, StateEncoder(obs_spec.state_dim), device, seed)
        return cls(
            config,
            obs_spec,
            action_dim,
            build_pixel_encoder(config.vision, obs_spec, seed, encoder),
            device,
            seed,
        )

    def fit_normalization(self, states: Tensor | np.ndarray) -> None:
        """Standardise the "state" input with these states' per-dimension mean and std from now on.

        Pass every demo state, shape (N, state_dim). A dimension that does not vary in them is only
        centred (scale 1), so a change unseen in the demos is not blown up."""
        if not self.config.normalize_observations:
            raise ValueError("fit_normalization needs normalize_observations=True in the agent's config")
        state_dim = self.obs_spec.state_dim
        if state_dim is None:
            raise ValueError("this BCAgent has no 'state' observation to normalise (pixels only)")
        if not torch.is_tensor(states):
            states = torch.as_tensor(np.asarray(states, dtype=np.float32))
        if states.ndim != 2 or states.shape[1] != state_dim or states.shape[0] < 1:
            raise ValueError(f"states must be (N, {state_dim}) with N >= 1, got shape {tuple(states.shape)}")
        states = states.detach().to(torch.float64)
        if not torch.isfinite(states).all():
            raise ValueError("states contain NaN or inf")
        std = states.std(0, unbiased=False)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        self.obs_mean.copy_(states.mean(0))
        self.obs_std.copy_(std)
        self.obs_fitted.fill_(True)

    def _normalized(self, observations: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.config.normalize_observations or self.obs_spec.state_dim is None:
            return observations
        return {**observations, "state": (observations["state"] - self.obs_mean) / self.obs_std}

    def update(self, batch: Mapping[str, Any]) -> tuple[BCAgent, UpdateInfo]:
        """One gradient step on a batch of `observations` and `actions`; returns `(self, info)`.

        With `normalize_observations` and no `fit_normalization` before, the first batch's statistics
        are used (an estimate: callers holding all the demos, like `serl train`, fit on them first)."""
        batch = prepare_batch(
            batch,
            self.obs_spec,
            self.action_dim,
            self.device,
            keys=("observations", "actions"),
            check_finite=self.config.check_finite,
        )
        if (
            self.step == 0
            and self.config.normalize_observations
            and self.obs_spec.state_dim is not None
            and not bool(self.obs_fitted)
        ):
            self.fit_normalization(batch["observations"]["state"])
        if self.config.vision is not None:
            batch = augment_batch(batch, self.config.vision, self.rngs["train"])
        set_learning_rates(self.optimizer, self.step, self.config.lr_warmup_steps, self.config.lr_decay_steps)
        self.optimizer.zero_grad(set_to_none=True)
        with seeded_dropout(self._has_dropout, self.rngs["dropout"], self.device):
            loss, info = self._loss(batch["observations"], batch["actions"])
        apply_gradients(loss, self.optimizer, self.grad_scaler, self.config.max_grad_norm)
        self.step += 1
        return self, UpdateInfo(info)

    def _compute_loss(
        self, observations: dict[str, Tensor], actions: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=self.config.amp):
            features = self.encoder(self._normalized(observations))
            if self.config.loss == "mle":
                return mle_loss(self.policy, features, actions)
            return mse_loss(self.policy, features, actions)

    @torch.no_grad()
    def sample_actions(
        self, observations: Observation, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> Tensor | np.ndarray:
        """As `SACAgent.sample_actions`. The "mle" Gaussian is not squashed, so sampled actions may leave
        [-1, 1] (the envs clip them); the "mse" policy is deterministic and ignores `deterministic`."""
        obs, unbatched = prepare_obs(observations, self.obs_spec, self.device)
        with evaluation_mode(self):
            output = self.policy(self.encoder(self._normalized(obs)))
        if self.config.loss == "mse":
            actions = output
        else:
            actions = draw_actions(output, deterministic, generator if generator is not None else self.rngs["act"])
        return format_actions(actions, observations, unbatched)

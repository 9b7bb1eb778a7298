"""Soft actor-critic with SERL's recipe: a vectorized critic ensemble with REDQ subsampling, high UTD
with critic-only updates, a learned temperature and an optional entropy backup.

Read top to bottom: the three losses (`critic_loss`, `policy_loss`, `temperature_loss`) are small
functions returning `(loss, info)`; `SACAgent` wires them to networks, one fused Adam and the target
update. As in SERL, all three losses of a full update are computed at the same parameters and
applied together (one backward pass): the actor's Q-values use detached critic weights and the
temperature sees a detached entropy, so each loss only trains its own parameters.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
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
    split_batch,
)
from serl_agents.checkpoint import CheckpointMixin
from serl_agents.nets.ensemble import CriticEnsemble
from serl_agents.nets.mlp import MLPConfig
from serl_agents.nets.policy import STD_PARAMETERIZATIONS, GaussianPolicy


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters; defaults are SERL's state-based sim recipe (`make_sac_agent`)."""

    critic_network: MLPConfig = MLPConfig()  # each critic: [256, 256], tanh, LayerNorm (SERL)
    policy_network: MLPConfig = MLPConfig()  # actor trunk: [256, 256], tanh, LayerNorm (SERL)
    critic_ensemble_size: int = 10  # N critics, all trained on every batch (SERL: 10)
    critic_subsample_size: int | None = 2  # M random critics whose min is the target (REDQ); None: all N
    discount: float = 0.99  # gamma
    soft_target_update_rate: float = 0.005  # tau of the Polyak target update, after every critic step
    temperature_init: float = 1e-2  # initial entropy temperature alpha (SERL)
    target_entropy: float | None = None  # None: -|A|/2 (SERL), filled in when the agent is created
    backup_entropy: bool = False  # subtract alpha * log pi(a'|s') in the TD target (SERL: off)
    std_parameterization: str = "exp"  # policy std = exp(head) or softplus(head)
    std_min: float = 1e-5  # policy std clipped to [std_min, std_max] (SERL)
    std_max: float = 5.0
    actor_lr: float = 3e-4  # Adam learning rates (SERL: 3e-4 for all three)
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    lr_warmup_steps: int = 0  # linear learning-rate warmup over this many update() calls; 0: none
    lr_decay_steps: int = 0  # cosine decay to 0 over this many update() calls after warmup; 0: constant
    max_grad_norm: float | None = None  # clip each of critic / actor / temperature gradients; None: no clip
    check_finite: bool = True  # reject batches with NaN/inf (costs one host sync per update)
    compile: bool = False  # torch.compile the loss computation (forward and backward graphs)
    amp: bool = False  # autocast: bfloat16 on CPU, float16 with a GradScaler on CUDA

    def __post_init__(self) -> None:
        if self.critic_ensemble_size < 1:
            raise ValueError(f"critic_ensemble_size must be >= 1, got {self.critic_ensemble_size}")
        m = self.critic_subsample_size
        if m is not None and not 1 <= m <= self.critic_ensemble_size:
            raise ValueError(
                f"critic_subsample_size must be in [1, critic_ensemble_size={self.critic_ensemble_size}] or None, got {m}"
            )
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if not 0.0 < self.soft_target_update_rate <= 1.0:
            raise ValueError(f"soft_target_update_rate must be in (0, 1], got {self.soft_target_update_rate}")
        if self.temperature_init <= 0:
            raise ValueError(f"temperature_init must be > 0, got {self.temperature_init}")
        if self.std_parameterization not in STD_PARAMETERIZATIONS:
            raise ValueError(
                f"std_parameterization must be one of {STD_PARAMETERIZATIONS}, got {self.std_parameterization!r}"
            )
        for name in ("actor_lr", "critic_lr", "temperature_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        check_schedule(self.lr_warmup_steps, self.lr_decay_steps, self.max_grad_norm)


def check_schedule(warmup_steps: int, decay_steps: int, max_grad_norm: float | None) -> None:
    if warmup_steps < 0 or decay_steps < 0:
        raise ValueError(
            f"lr_warmup_steps and lr_decay_steps must be >= 0, got {warmup_steps}, {decay_steps}"
        )
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")


def lr_scale(step: int, warmup_steps: int, decay_steps: int) -> float:
    """Learning-rate multiplier at update `step`: linear warmup, then optional cosine decay to 0."""
    scale = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if decay_steps:
        progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
        scale *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return scale


def set_learning_rates(
    optimizer: torch.optim.Optimizer, step: int, warmup_steps: int, decay_steps: int
) -> None:
    """Set each param group's lr to its "base_lr" times the schedule at `step` (counted in update() calls)."""
    scale = lr_scale(step, warmup_steps, decay_steps)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * scale


def make_config(config_class: type, overrides: Mapping[str, Any], **fixed: Any) -> Any:
    """`config_class(**fixed, **overrides)` with a ValueError naming unknown keys."""
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {config_class.__name__} options {unknown}; known options: {sorted(known)}")
    return config_class(**fixed, **overrides)


def critic_loss(
    critic: CriticEnsemble,
    target_critic: CriticEnsemble,
    actor: GaussianPolicy,
    features: Tensor,
    next_features: Tensor,
    actions: Tensor,
    rewards: Tensor,
    masks: Tensor,
    temperature: Tensor,
    next_noise: Tensor,
    members: Tensor | None,
    discount: float,
    backup_entropy: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean squared TD error of every critic against r + gamma * mask * min over `members` of Q_target(s', a')."""
    with torch.no_grad():
        next_actions, next_log_probs = actor(next_features).rsample(next_noise)
        target_q = target_critic(next_features, next_actions, members=members).min(dim=0).values
        if backup_entropy:
            target_q = target_q - temperature * next_log_probs
        target = rewards + discount * masks * target_q
    qs = critic(features, actions)  # (N, B)
    loss = (qs - target).square().mean()
    return loss, {"critic_loss": loss, "predicted_qs": qs.mean(), "target_qs": target.mean()}


def policy_loss(
    actor: GaussianPolicy, critic: CriticEnsemble, features: Tensor, temperature: Tensor, noise: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """alpha * log pi(a|s) - mean over critics of Q(s, a), a ~ pi(s); the critic's weights are not trained."""
    actions, log_probs = actor(features).rsample(noise)
    q = critic(features, actions, detach_params=True).mean(dim=0)
    loss = (temperature * log_probs - q).mean()
    return loss, {"actor_loss": loss, "entropy": -log_probs.mean()}


def temperature_loss(
    log_temperature: Tensor, entropy: Tensor, target_entropy: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """alpha * (entropy - target): its gradient raises alpha while the policy's entropy is below target."""
    temperature = log_temperature.exp()
    loss = temperature * (entropy.detach() - target_entropy)
    return loss, {"temperature_loss": loss, "temperature": temperature}


class StateEncoder(nn.Module):
    """State-based agents have no encoder: the "state" vector is the feature vector (as in SERL)."""

    def __init__(self, state_dim: int):
        super().__init__()
        self.output_dim = state_dim

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        return obs["state"]


class SACAgent(CheckpointMixin, nn.Module):
    """SERL's `SACAgent` in PyTorch: `create_states(...)`, `update(batch)`, `sample_actions(obs)`, `save`/`load`.

    `update` returns `(self, info)`; the agent is updated in place (the return keeps SERL's
    `agent, info = agent.update(batch)` shape). Randomness (policy noise, critic subsets, DrQ shifts)
    comes from the agent's own generators seeded by `seed`: same seed and batches, same training.
    """

    config_class = SACConfig

    def __init__(
        self,
        config: SACConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        encoder: nn.Module,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        super().__init__()
        if config.target_entropy is None:
            config = replace(config, target_entropy=-action_dim / 2)
        self.config = config
        self.obs_spec = obs_spec
        self.action_dim = action_dim
        self.seed = seed
        self.step = 0
        self.device = torch.device(device)
        init_rng = torch.Generator().manual_seed(seed)  # CPU, so weights do not depend on the device
        self.encoder = encoder
        self.actor = GaussianPolicy(
            encoder.output_dim,
            action_dim,
            config.policy_network,
            tanh_squash=True,
            std_parameterization=config.std_parameterization,
            std_min=config.std_min,
            std_max=config.std_max,
            generator=init_rng,
        )
        self.critic = CriticEnsemble(
            config.critic_ensemble_size, encoder.output_dim, action_dim, config.critic_network, init_rng
        )
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(config.temperature_init)))
        self.to(self.device)
        self.optimizer = torch.optim.Adam(self._param_groups(), fused=fused_adam_available(self.device))
        self.rngs = agent_generators(self.device, seed)
        use_scaler = config.amp and self.device.type == "cuda"
        self.grad_scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self._amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self._target_params = list(self.target_critic.parameters())
        self._online_params = list(self.critic.parameters())
        self._has_dropout = has_dropout(self)
        self._losses = torch.compile(self._compute_losses) if config.compile else self._compute_losses

    def _param_groups(self) -> list[dict[str, Any]]:
        """One Adam, three groups: critic (+ trainable encoder), actor, temperature. A critic-only step
        leaves actor/temperature grads as None, which Adam skips, so this equals three optimizers."""
        critic = [p for p in [*self.critic.parameters(), *self.encoder.parameters()] if p.requires_grad]
        return [
            {"params": critic, "lr": self.config.critic_lr, "base_lr": self.config.critic_lr},
            {
                "params": list(self.actor.parameters()),
                "lr": self.config.actor_lr,
                "base_lr": self.config.actor_lr,
            },
            {
                "params": [self.log_temperature],
                "lr": self.config.temperature_lr,
                "base_lr": self.config.temperature_lr,
            },
        ]

    @classmethod
    def create_states(
        cls,
        observations: Observation,
        actions: Tensor | np.ndarray,
        critic_network_kwargs: Mapping[str, Any] | None = None,
        policy_network_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        **config_kwargs: Any,
    ) -> SACAgent:
        """SAC on state observations: a (B, D)/(D,) example tensor, or a dict whose "state" is used.

        `*_network_kwargs` take SERL's keys (hidden_dims, activations, use_layer_norm, dropout_rate);
        other keyword arguments are `SACConfig` fields.
        """
        spec = ObsSpec.from_example(observations)
        if spec.state_dim is None:
            raise ValueError("create_states needs a 'state' observation; use DrQAgent.create_drq for images")
        spec = ObsSpec(state_dim=spec.state_dim, image_shapes=(), is_dict=spec.is_dict)
        config = make_config(
            cls.config_class,
            config_kwargs,
            critic_network=MLPConfig.from_kwargs(critic_network_kwargs),
            policy_network=MLPConfig.from_kwargs(policy_network_kwargs),
        )
        return cls._build(config, spec, action_dim_of(actions), torch.device(device), seed, None)

    @classmethod
    def _build(
        cls,
        config: SACConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        device: torch.device,
        seed: int,
        encoder: nn.Module | None,
    ) -> SACAgent:
        if encoder is not None:
            raise ValueError(f"{cls.__name__} on states takes no encoder module")
        return cls(config, obs_spec, action_dim, StateEncoder(obs_spec.state_dim), device, seed)

    # ----------------------------------------------------------------------------------- training

    def update(self, batch: Mapping[str, Any], utd_ratio: int = 1) -> tuple[SACAgent, UpdateInfo]:
        """One SERL `update_high_utd` step: the batch is split into `utd_ratio` minibatches; the first
        `utd_ratio - 1` update the critic only, the last updates critic, actor and temperature.

        Batch (SERL's layout, numpy or tensors): observations, actions (B, A), rewards (B,), masks (B,)
        = 1 - terminated (a time-limit truncation keeps mask 1), next_observations; other keys are
        ignored. Returns `(self, info)`; info holds the last minibatch's scalars (critic_loss,
        predicted_qs, target_qs, actor_loss, entropy, temperature_loss, temperature) as floats read
        from the device on first access.
        """
        if not isinstance(utd_ratio, int) or utd_ratio < 1:
            raise ValueError(f"utd_ratio must be a positive int, got {utd_ratio!r}")
        batch = prepare_batch(
            batch, self.obs_spec, self.action_dim, self.device, check_finite=self.config.check_finite
        )
        batch = self._augment(batch)
        minibatches = split_batch(batch, utd_ratio)
        set_learning_rates(self.optimizer, self.step, self.config.lr_warmup_steps, self.config.lr_decay_steps)
        with seeded_dropout(self._has_dropout, self.rngs["dropout"], self.device):
            for i, minibatch in enumerate(minibatches):
                info = self._gradient_step(minibatch, full=i == utd_ratio - 1)
        self.step += 1
        return self, info

    def _augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Hook for data augmentation (DrQ's random shifts); state SAC trains on the batch as is."""
        return batch

    def _gradient_step(self, batch: dict[str, Any], full: bool) -> UpdateInfo:
        size = batch["rewards"].shape[0]
        noise = torch.randn(
            (2 if full else 1, size, self.action_dim), generator=self.rngs["train"], device=self.device
        )
        members = None
        if self.config.critic_subsample_size is not None:
            perm = torch.randperm(
                self.config.critic_ensemble_size, generator=self.rngs["train"], device=self.device
            )
            members = perm[: self.config.critic_subsample_size]
        self.optimizer.zero_grad(set_to_none=True)
        loss, info = self._losses(batch, noise, members, full)
        apply_gradients(loss, self.optimizer, self.grad_scaler, self.config.max_grad_norm)
        with torch.no_grad():
            torch._foreach_lerp_(
                self._target_params, self._online_params, self.config.soft_target_update_rate
            )
        return UpdateInfo(info)

    def _compute_losses(
        self, batch: dict[str, Any], noise: Tensor, members: Tensor | None, full: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Critic loss, plus actor and temperature losses when `full`; one encoder pass per observation."""
        cfg = self.config
        with torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=cfg.amp):
            features = self.encoder(batch["observations"])
            with torch.no_grad():
                next_features = self.encoder(batch["next_observations"])
            temperature = self.log_temperature.exp().detach()
            loss, info = critic_loss(
                self.critic,
                self.target_critic,
                self.actor,
                features,
                next_features,
                batch["actions"],
                batch["rewards"],
                batch["masks"],
                temperature,
                noise[0],
                members,
                cfg.discount,
                cfg.backup_entropy,
            )
            if not full:
                return loss, info
            # The actor reads detached features: only the critic trains the encoder (SERL, DrQ).
            actor_loss, actor_info = policy_loss(
                self.actor, self.critic, features.detach(), temperature, noise[1]
            )
            temp_loss, temp_info = temperature_loss(
                self.log_temperature, actor_info["entropy"], cfg.target_entropy
            )
        return loss + actor_loss + temp_loss, {**info, **actor_info, **temp_info}

    # ------------------------------------------------------------------------------------- acting

    @torch.no_grad()
    def sample_actions(
        self, observations: Observation, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> Tensor | np.ndarray:
        """Actions in [-1, 1] for a batch (B, ...) or a single observation (no batch dim, as SERL's actor
        loop passes). numpy in -> float32 numpy out; tensors in -> a tensor on the agent's device.
        `deterministic=True` gives tanh(mean) (SERL's `argmax=True`); otherwise the noise comes from
        `generator` or the agent's acting generator (separate from training's, so acting does not
        change the training stream).
        """
        obs, unbatched = prepare_obs(observations, self.obs_spec, self.device)
        with evaluation_mode(self):
            dist = self.actor(self.encoder(obs))
        actions = draw_actions(dist, deterministic, generator if generator is not None else self.rngs["act"])
        return format_actions(actions, observations, unbatched)


def draw_actions(dist, deterministic: bool, generator: torch.Generator) -> Tensor:
    """The policy distribution's mode, or a reparameterized sample with noise from `generator` (the agent's
    acting stream, so acting never moves the training stream)."""
    if deterministic:
        return dist.mode()
    noise = torch.randn(dist.mean.shape, generator=generator, device=dist.mean.device)
    actions, _ = dist.rsample(noise)
    return actions


def agent_generators(device: torch.device, seed: int) -> dict[str, torch.Generator]:
    """The agent's random streams: training noise, acting noise (separate, so acting does not shift
    training), and a CPU stream that seeds dropout (see `seeded_dropout`)."""
    return {
        "train": torch.Generator(device).manual_seed(seed),
        "act": torch.Generator(device).manual_seed(seed + 1),
        "dropout": torch.Generator().manual_seed(seed + 2),
    }


def has_dropout(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in module.modules())


@contextlib.contextmanager
def seeded_dropout(enabled: bool, generator: torch.Generator, device: torch.device) -> Iterator[None]:
    """Dropout layers draw from torch's global RNG: when `enabled` (the agent has dropout), seed that RNG
    from the agent's own CPU `generator` inside the block and restore it after, so training depends on
    the agent's seed only. Disabled, it does nothing (forking the RNG costs ~70 us)."""
    if not enabled:
        yield
        return
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def apply_gradients(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    max_grad_norm: float | None,
) -> None:
    """Backward, optional per-group norm clipping, optimizer step (through the GradScaler under fp16 AMP)."""
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if max_grad_norm is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_norm_(group["params"], max_grad_norm, foreach=True)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


@contextlib.contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[None]:
    """`module` in eval() (dropout off) inside the block, its previous mode restored after."""
    was_training = module.training
    module.train(False)
    try:
        yield
    finally:
        module.train(was_training)


def fused_adam_available(device: torch.device) -> bool:
    """Fused Adam (one kernel for all parameters) exists for CUDA and, in torch >= 2.4, CPU."""
    return device.type == "cuda" or (device.type == "cpu" and torch.__version__ >= "2.4")

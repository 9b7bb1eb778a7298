"""HIL-SERL's learned gripper: SAC/DrQ for the arm plus a discrete, DQN-trained grasp critic.

The env action is `[arm dims..., gripper]`, in the env's own order (dx dy dz [drx dry drz] gripper):
the continuous actor outputs every dim but the last; the grasp critic picks the last from three
choices, index `k` = 0 open, 1 stay, 2 close, emitted as the gripper value `k - 1` in {-1, 0, +1}
(HIL-SERL's `int(a) + 1` index map, with this project's sign: -1 open, +1 closed, where HIL-SERL's
order reads {close, stay, open}).

"Stay" and the absolute gripper. This project's gripper action is absolute (`ActionMap`: -1 open,
+1 closed, 0 half closed), so "stay" must turn into the last commanded value somewhere. That memory
lives in `GripperHoldWrapper`, one per env: > 0.5 closes, < -0.5 opens, anything between repeats
the last command (the thresholds of `GripperPenaltyWrapper`, so penalty and hold agree). Not in the
agent, because the memory must be per env instance, reset with it, follow what was *executed* when
a person intervenes, and survive one agent acting in a training and an evaluation env in turn; an
agent-side memory gets all four wrong. The replay buffer then holds the choice itself, so every
Q-value is trained on the transitions where it was chosen (as in HIL-SERL); the critic knows the
gripper's state from the observation (the gripper opening in "state"). Stored gripper values are
mapped back to choices with the same thresholds, so ±1 demos and interventions read as open/close.

Training (every minibatch, critic-only steps included, as HIL-SERL): Double DQN, the online net
picks argmax_a Q(s', a), the target net values it; reward = rewards + grasp_penalty (batch key,
0 when absent); same discount and masks as the SAC critic; the target net is Polyak-averaged with
`soft_target_update_rate` after every step. The grasp critic reads the shared encoder's features
*detached* and dropout-free, as when acting (HIL-SERL lets it train the shared encoder): the
encoder is trained by the continuous critic only, so arm learning is exactly that of the plain
SAC/DrQ agent with the same seed (unless the grasp critic itself has dropout, which draws from the
same RNG). For DrQ this costs one extra no-grad encoder pass over observations and next
observations per gradient step.

Acting: argmax Q; when not deterministic, a uniformly random choice with probability
`grasp_epsilon` (HIL-SERL acts greedily: `grasp_epsilon=0`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
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
    to_tensor,
)
from serl_agents.drq import DrQAgent, DrQConfig
from serl_agents.nets.grasp import GraspCritic
from serl_agents.nets.mlp import MLPConfig
from serl_agents.sac import (
    SACAgent,
    SACConfig,
    evaluation_mode,
    has_dropout,
    seeded_dropout,
    set_learning_rates,
)
from serl_envs.wrappers.gripper_penalty import CLOSE_ABOVE, OPEN_BELOW

GRASP_CHOICES = ("open", "stay", "close")  # index k -> env gripper value k - 1
OPEN, STAY, CLOSE = range(len(GRASP_CHOICES))
PENALTY_KEY = "grasp_penalty"
GRASP_SEED_OFFSET = 4  # the grasp critic's init stream: seed + 4, apart from the agent's other streams


# ------------------------------------------------------------------------------------- the action map


def grasp_choice(gripper: Tensor) -> Tensor:
    """Choice index of gripper values: > 0.5 close, < -0.5 open, else stay (GripperPenaltyWrapper's thresholds)."""
    return torch.where(gripper > CLOSE_ABOVE, CLOSE, torch.where(gripper < OPEN_BELOW, OPEN, STAY))


def assemble_action(arm: Tensor, choices: Tensor) -> Tensor:
    """The env action (B, A + 1): the actor's arm dims (B, A), then the gripper value (choice - 1)."""
    return torch.cat([arm, (choices.to(arm.dtype) - 1.0).unsqueeze(-1)], dim=-1)


def arm_example(actions: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """The arm part of an example env action; the env action needs at least one arm dim and the gripper."""
    if action_dim_of(actions) < 2:
        raise ValueError(
            f"a grasp agent needs an env action example with arm dims and the gripper last, got shape "
            f"{tuple(actions.shape)}"
        )
    return actions[..., :-1]


# ----------------------------------------------------------------------------------------- the loss


def double_dqn_target(
    grasp_critic: nn.Module,
    target_grasp_critic: nn.Module,
    next_features: Tensor,
    rewards: Tensor,
    masks: Tensor,
    discount: float,
) -> Tensor:
    """r + gamma * mask * Q_target(s', argmax_a Q_online(s', a)): the online net picks, the target net values."""
    with torch.no_grad():
        best = grasp_critic(next_features).argmax(dim=-1, keepdim=True)
        next_q = target_grasp_critic(next_features).gather(-1, best).squeeze(-1)
        return rewards + discount * masks * next_q


def grasp_critic_loss(
    grasp_critic: nn.Module,
    target_grasp_critic: nn.Module,
    features: Tensor,
    next_features: Tensor,
    choices: Tensor,
    grasp_rewards: Tensor,
    masks: Tensor,
    discount: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean squared TD error of Q(s, chosen gripper action) against the Double DQN target."""
    target = double_dqn_target(
        grasp_critic, target_grasp_critic, next_features, grasp_rewards, masks, discount
    )
    q = grasp_critic(features).gather(-1, choices.unsqueeze(-1)).squeeze(-1)
    loss = (q - target).square().mean()
    return loss, {
        "grasp_critic_loss": loss,
        "predicted_grasp_qs": q.mean(),
        "target_grasp_qs": target.mean(),
        "grasp_rewards": grasp_rewards.mean(),
    }


# -------------------------------------------------------------------------------------- the configs


@dataclass(frozen=True)
class GraspOptions:
    """The grasp critic's options, shared by the state and pixel configs."""

    grasp_critic_network: MLPConfig = MLPConfig()  # [256, 256], tanh, LayerNorm (HIL-SERL)
    grasp_critic_lr: float = 3e-4  # its Adam learning rate (HIL-SERL); follows the agent's lr schedule
    grasp_epsilon: float = 0.05  # P(uniformly random gripper choice) when not deterministic; 0: greedy


def check_grasp_options(config: GraspOptions) -> None:
    if config.grasp_critic_lr <= 0:
        raise ValueError(f"grasp_critic_lr must be > 0, got {config.grasp_critic_lr}")
    if not 0.0 <= config.grasp_epsilon <= 1.0:
        raise ValueError(f"grasp_epsilon must be in [0, 1], got {config.grasp_epsilon}")


@dataclass(frozen=True)
class GraspSACConfig(SACConfig, GraspOptions):
    """SAC hyperparameters for the arm plus the grasp critic's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_grasp_options(self)


@dataclass(frozen=True)
class GraspDrQConfig(DrQConfig, GraspOptions):
    """DrQ hyperparameters for the arm plus the grasp critic's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_grasp_options(self)


# ---------------------------------------------------------------------------------------- the agents


class GraspSACAgent(SACAgent):
    """SAC on states for the arm + the grasp critic; SERL's API: `create_states`, `update`, `sample_actions`,
    `save`/`load`. `action_dim` is the actor's (arm) size, `env_action_dim` = `action_dim + 1`.

    Batches hold full env actions (B, action_dim + 1) and optionally `grasp_penalty` (B,).
    """

    config_class = GraspSACConfig

    def __init__(
        self,
        config: GraspSACConfig | GraspDrQConfig,
        obs_spec: ObsSpec,
        action_dim: int,
        encoder: nn.Module,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        super().__init__(config, obs_spec, action_dim, encoder, device, seed)
        init_rng = torch.Generator().manual_seed(seed + GRASP_SEED_OFFSET)
        self.grasp_critic = GraspCritic(
            self.encoder.output_dim, config.grasp_critic_network, len(GRASP_CHOICES), init_rng
        ).to(self.device)
        self.target_grasp_critic = copy.deepcopy(self.grasp_critic).requires_grad_(False)
        lr = config.grasp_critic_lr
        self.optimizer.add_param_group(
            {"params": list(self.grasp_critic.parameters()), "lr": lr, "base_lr": lr}
        )
        # One Polyak update for both critics: SACAgent lerps these lists after every gradient step.
        self._online_params += list(self.grasp_critic.parameters())
        self._target_params += list(self.target_grasp_critic.parameters())
        self._has_dropout = has_dropout(self)

    @property
    def env_action_dim(self) -> int:
        return self.action_dim + 1

    @classmethod
    def create_states(
        cls,
        observations: Observation,
        actions: Tensor | np.ndarray,
        critic_network_kwargs: Mapping[str, Any] | None = None,
        policy_network_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        grasp_critic_network_kwargs: Mapping[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> GraspSACAgent:
        """As `SACAgent.create_states`, with `actions` an example *env* action (arm dims, gripper last).
        Other keyword arguments: `GraspSACConfig` fields (`grasp_epsilon`, `grasp_critic_lr`, SAC's)."""
        return super().create_states(
            observations,
            arm_example(actions),
            critic_network_kwargs,
            policy_network_kwargs,
            device,
            seed,
            grasp_critic_network=MLPConfig.from_kwargs(grasp_critic_network_kwargs),
            **config_kwargs,
        )

    # ----------------------------------------------------------------------------------- training

    def grasp_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The batch as this agent trains on it: validated against full env actions, then `actions` = the
        arm dims (for SAC), `grasp_actions` = the gripper's choice index, `grasp_rewards` = rewards +
        grasp_penalty (0 when the key is absent)."""
        prepared = prepare_batch(
            batch, self.obs_spec, self.env_action_dim, self.device, check_finite=self.config.check_finite
        )
        rewards = prepared["rewards"]
        grasp_rewards = rewards
        if PENALTY_KEY in batch:
            label = f"batch[{PENALTY_KEY!r}]"
            penalty = to_tensor(batch[PENALTY_KEY], self.device, label)
            if penalty.shape != rewards.shape:
                raise ValueError(f"{label} has shape {tuple(penalty.shape)}, expected {tuple(rewards.shape)}")
            if self.config.check_finite and not bool(torch.isfinite(penalty).all()):
                raise ValueError(f"{label} contains NaN or inf")
            grasp_rewards = rewards + penalty
        actions = prepared["actions"]
        return {
            **prepared,
            "actions": actions[:, :-1],
            "grasp_actions": grasp_choice(actions[:, -1]),
            "grasp_rewards": grasp_rewards,
        }

    def update(self, batch: Mapping[str, Any], utd_ratio: int = 1) -> tuple[GraspSACAgent, UpdateInfo]:
        """`SACAgent.update` on the arm dims, with the grasp critic trained on every minibatch.

        Batch: observations, actions (B, env_action_dim), rewards, masks, next_observations, and
        optionally grasp_penalty (B,). Info adds grasp_critic_loss, predicted_grasp_qs,
        target_grasp_qs and grasp_rewards (last minibatch) to SAC's.
        """
        if not isinstance(utd_ratio, int) or utd_ratio < 1:
            raise ValueError(f"utd_ratio must be a positive int, got {utd_ratio!r}")
        minibatches = split_batch(self._augment(self.grasp_batch(batch)), utd_ratio)
        set_learning_rates(self.optimizer, self.step, self.config.lr_warmup_steps, self.config.lr_decay_steps)
        with seeded_dropout(self._has_dropout, self.rngs["dropout"], self.device):
            for i, minibatch in enumerate(minibatches):
                info = self._gradient_step(minibatch, full=i == utd_ratio - 1)
        self.step += 1
        return self, info

    def _compute_losses(
        self, batch: dict[str, Any], noise: Tensor, members: Tensor | None, full: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        loss, info = super()._compute_losses(batch, noise, members, full)
        cfg = self.config
        with torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=cfg.amp):
            # Detached and dropout-free (as when acting): the grasp critic neither trains the encoder
            # nor draws from the RNG stream of the SAC losses' dropout.
            with torch.no_grad(), evaluation_mode(self.encoder):
                features = self.encoder(batch["observations"])
                next_features = self.encoder(batch["next_observations"])
            grasp_loss, grasp_info = grasp_critic_loss(
                self.grasp_critic,
                self.target_grasp_critic,
                features,
                next_features,
                batch["grasp_actions"],
                batch["grasp_rewards"],
                batch["masks"],
                cfg.discount,
            )
        return loss + grasp_loss, {**info, **grasp_info}

    # ------------------------------------------------------------------------------------- acting

    @torch.no_grad()
    def sample_actions(
        self, observations: Observation, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> Tensor | np.ndarray:
        """Env actions `[arm (from the actor), gripper (from the grasp critic)]`, batched or not, numpy in
        -> numpy out. Deterministic: tanh(mean) and argmax Q; otherwise a policy sample and
        epsilon-greedy, both from `generator` or the agent's acting generator."""
        obs, unbatched = prepare_obs(observations, self.obs_spec, self.device)
        with evaluation_mode(self):
            features = self.encoder(obs)
            dist = self.actor(features)
            choices = self.grasp_critic(features).argmax(dim=-1)
        if deterministic:
            arm = dist.mode()
        else:
            rng = generator if generator is not None else self.rngs["act"]
            arm, _ = dist.rsample(torch.randn(dist.mean.shape, generator=rng, device=self.device))
            explore = torch.rand(choices.shape, generator=rng, device=self.device) < self.config.grasp_epsilon
            random = torch.randint(len(GRASP_CHOICES), choices.shape, generator=rng, device=self.device)
            choices = torch.where(explore, random, choices)
        return format_actions(assemble_action(arm, choices), observations, unbatched)


class GraspDrQAgent(GraspSACAgent, DrQAgent):
    """DrQ from pixels for the arm + the grasp critic on the shared encoder's (detached) features."""

    config_class = GraspDrQConfig

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
        grasp_critic_network_kwargs: Mapping[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> GraspDrQAgent:
        """As `DrQAgent.create_drq`, with `actions` an example *env* action (arm dims, gripper last).
        Other keyword arguments: vision options and `GraspDrQConfig` fields."""
        return super().create_drq(
            observations,
            arm_example(actions),
            image_keys,
            encoder,
            encoder_kwargs,
            critic_network_kwargs,
            policy_network_kwargs,
            device,
            seed,
            grasp_critic_network=MLPConfig.from_kwargs(grasp_critic_network_kwargs),
            **config_kwargs,
        )


# ------------------------------------------------------------------------------- the env-side memory


class GripperHoldWrapper(gym.Wrapper):
    """HIL-SERL's gripper semantics on an absolute-gripper env: a gripper value > 0.5 closes, < -0.5 opens,
    anything between repeats the last command ("stay"). The env always receives -1 or +1.

    The held command follows what was executed (`info["intervene_action"]` when a person intervened) and
    restarts from the task's initial gripper state on reset. Malformed actions pass through unchanged,
    so the env's own validation names the problem.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        task = getattr(env.unwrapped, "task", None)
        if task is not None and not task.layout.gripper:
            raise ValueError(
                f"GripperHoldWrapper needs an action with a gripper dimension; {task.name} has none"
            )
        self._initial = 1.0 if getattr(task, "initial_gripper", 0.0) > 0.5 else -1.0
        self._held = self._initial

    @property
    def held_gripper(self) -> float:
        """The gripper command "stay" repeats: -1 open, +1 closed."""
        return self._held

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._held = self._initial
        return obs, info

    def step(self, action):
        command = self._command(action)
        obs, reward, terminated, truncated, info = self.env.step(command)
        executed = np.asarray(info.get("intervene_action", command), dtype=np.float64).reshape(-1)
        self._held = self._resolve(float(executed[-1]))
        return obs, reward, terminated, truncated, info

    def _command(self, action: Any) -> Any:
        try:
            command = np.array(action, dtype=self.action_space.dtype)
        except (TypeError, ValueError):
            return action
        if command.shape != self.action_space.shape or not np.isfinite(command[-1]):
            return action
        command[-1] = self._resolve(float(command[-1]))
        return command

    def _resolve(self, value: float) -> float:
        return 1.0 if value > CLOSE_ABOVE else -1.0 if value < OPEN_BELOW else self._held

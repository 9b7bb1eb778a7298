"""SB3-shaped SAC and DrQ: SB3's `OffPolicyAlgorithm` loop around the `serl_agents` core.

SB3 supplies what its users expect for real: `learn` with callbacks and progress bar, VecEnvs, the
logger, `predict`, `save`/`load` zips, `evaluate_policy`. The SERL parts are not written twice:
`train` samples `batch_size * utd_ratio` transitions and calls `agent.update(batch, utd_ratio)` (critic
ensemble with subsampling, critic-only UTD steps, DrQ shifts), acting is `agent.sample_actions`, and
the replay is `serl_agents.replay` (frames stored once; optional 50/50 demo mixing via `demo_buffer`).

Save format: SB3's zip. Weights, optimizer moments, the agent's RNG streams and its update count go
through state dicts (`torch.load(weights_only=True)`); SB3 itself stores other attributes (spaces,
`policy_class`, `train_freq`, episode buffers) with cloudpickle, so load only zips you trust. For a
pickle-free file use `model.agent.save(path)` / `SACAgent.load(path)`.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.preprocessing import check_for_nested_spaces
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from serl_agents.drq import DrQAgent
from serl_agents.replay import MixedSampler, ReplayBuffer
from serl_agents.sac import SACAgent
from serl_agents.sb3.buffer import SB3ReplayBuffer
from serl_agents.sb3.policy import AgentPolicy
from serl_agents.train import image_keys_of

POLICY_KWARGS = ("net_arch",)  # the SB3 policy_kwargs these algorithms understand
# SB3 SAC arguments with no counterpart here, and why (a clear error instead of "unknown SACConfig option")
SB3_ONLY_ARGUMENTS = {
    "action_noise": "exploration comes from the stochastic SERL policy",
    "replay_buffer_class": "the replay is serl_agents.replay (frames stored once)",
    "replay_buffer_kwargs": "the replay is serl_agents.replay (frames stored once)",
    "optimize_memory_usage": "frames are always stored once",
    "n_steps": "n-step returns are not part of the SERL recipe",
    "use_sde": "the SERL policy is a tanh-squashed Gaussian",
    "ent_coef": "use temperature_init (the temperature is always learned, toward target_entropy)",
    "target_update_interval": "the target critics follow after every critic step (soft_target_update_rate)",
}


class AgentTrainingState:
    """The agent's update count and RNG streams as a state dict, so SB3's zip carries them.

    SB3 saves `state_dict()` of every object `_get_torch_save_params` names and restores it with
    `load_state_dict`; with this, a loaded model acts and trains exactly as the saved one would.
    """

    def __init__(self, agent: SACAgent) -> None:
        self.agent = agent

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.agent.step,
            "device_type": self.agent.device.type,
            "rngs": {name: rng.get_state() for name, rng in self.agent.rngs.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Restore; generator states only fit the same device type, across CPU/CUDA they are re-seeded."""
        self.agent.step = int(state["step"])
        same_device = state["device_type"] == self.agent.device.type
        for index, (name, rng) in enumerate(self.agent.rngs.items()):
            if same_device:
                rng.set_state(state["rngs"][name].cpu())
            else:
                rng.manual_seed((self.agent.seed * 1_000_003 + self.agent.step) * 7 + index)


def _entropy_seed() -> int:
    """A fresh seed from OS entropy (never the global RNG) when the user gives `seed=None`."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def _network_kwargs(policy_kwargs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SB3's `net_arch` (a list for both networks, or dict(pi=..., qf=...)) as SERL network kwargs."""
    unknown = sorted(set(policy_kwargs) - set(POLICY_KWARGS))
    if unknown:
        raise ValueError(
            f"unsupported policy_kwargs {unknown}; supported: {list(POLICY_KWARGS)} "
            "(other network options go in critic_network_kwargs / policy_network_kwargs)"
        )
    if "net_arch" not in policy_kwargs:
        return {}
    arch = policy_kwargs["net_arch"]
    if isinstance(arch, Mapping):
        if set(arch) != {"pi", "qf"}:
            raise ValueError(f"net_arch as a dict needs exactly the keys 'pi' and 'qf', got {sorted(arch)}")
        actor, critic = arch["pi"], arch["qf"]
    else:
        actor = critic = arch
    return {
        "policy_network_kwargs": {"hidden_dims": list(actor)},
        "critic_network_kwargs": {"hidden_dims": list(critic)},
    }


class SerlOffPolicyAlgorithm(OffPolicyAlgorithm):
    """Shared by `SAC` and `DrQ`; subclasses say which agent to build (`_make_agent`)."""

    policy_aliases: ClassVar[dict[str, type[AgentPolicy]]] = {  # type: ignore[assignment]
        "MlpPolicy": AgentPolicy,
        "MultiInputPolicy": AgentPolicy,
    }
    policy: AgentPolicy
    replay_buffer: SB3ReplayBuffer  # type: ignore[assignment]
    agent: SACAgent

    def __init__(
        self,
        policy: str | type[AgentPolicy],
        env: GymEnv | str | None,
        learning_rate: float | None = None,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 256,
        utd_ratio: int = 8,
        tau: float | None = None,
        gamma: float | None = None,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        demo_buffer: ReplayBuffer | None = None,
        demo_fraction: float = 0.5,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        device: torch.device | str = "auto",
        seed: int | None = None,
        _init_setup_model: bool = True,
        **agent_kwargs: Any,
    ) -> None:
        """SB3 arguments mean what they mean in SB3's SAC, with SERL's values as defaults (learning_starts
        1000 uniform-random steps, not SB3's 100). The SERL-specific ones:

        utd_ratio: gradient steps per `agent.update`; each update samples `batch_size * utd_ratio`
            transitions, trains the critic on all minibatches and the actor on the last (SERL: 8 state, 4 DrQ).
        learning_rate / tau / gamma: set the agent config's three learning rates / soft target rate /
            discount; None keeps the agent recipe's value (3e-4 / 0.005 / 0.99 SAC, 0.96 DrQ).
        gradient_steps: `agent.update` calls per `train_freq` (each is `utd_ratio` gradient steps).
        demo_buffer: demonstrations (a `ReplayBuffer`); each batch then takes `demo_fraction` of its rows
            from it and the rest from online data (RLPD / SERL 50/50). Not saved in the zip: pass it
            again to `load(..., demo_buffer=...)`.
        policy_kwargs: only `net_arch` (SB3's format) is understood.
        agent_kwargs: the agent's create-time options and config fields, e.g. `critic_ensemble_size=2`,
            `critic_network_kwargs={"hidden_dims": [64, 64]}`; for DrQ `encoder="resnet10"`, `augment_pad`.
        """
        unsupported = sorted(set(agent_kwargs) & set(SB3_ONLY_ARGUMENTS))
        if unsupported:
            reasons = "; ".join(f"{key!r}: {SB3_ONLY_ARGUMENTS[key]}" for key in unsupported)
            raise ValueError(f"SB3 SAC arguments not supported here: {reasons}")
        if callable(learning_rate):
            raise ValueError(
                "learning_rate must be a float or None here, not a schedule; "
                "use the agent options lr_warmup_steps / lr_decay_steps for a schedule"
            )
        if isinstance(policy, str) and env is not None:
            self._check_policy_name(policy, env)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,  # type: ignore[arg-type]  (None: resolved from the agent config)
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,  # type: ignore[arg-type]
            gamma=gamma,  # type: ignore[arg-type]
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            supported_action_spaces=(spaces.Box,),
        )
        if not isinstance(utd_ratio, int) or utd_ratio < 1:
            raise ValueError(f"utd_ratio must be a positive int, got {utd_ratio!r}")
        if not 0.0 < demo_fraction < 1.0:
            raise ValueError(f"demo_fraction must be in (0, 1), got {demo_fraction}")
        self.utd_ratio = utd_ratio
        self.demo_buffer = demo_buffer
        self.demo_fraction = demo_fraction
        self.agent_kwargs = dict(agent_kwargs)
        self._config_overrides = {
            key: value
            for key, value in (("discount", gamma), ("soft_target_update_rate", tau))
            if value is not None
        }
        if learning_rate is not None:
            self._config_overrides.update(
                actor_lr=learning_rate, critic_lr=learning_rate, temperature_lr=learning_rate
            )
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _check_policy_name(policy: str, env: GymEnv | str) -> None:
        if isinstance(env, str):
            return
        is_dict = isinstance(env.observation_space, spaces.Dict)
        if policy == "MultiInputPolicy" and not is_dict:
            raise ValueError(
                f"MultiInputPolicy needs a Dict observation space, got {env.observation_space}: use MlpPolicy"
            )

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping (Monitor, DummyVecEnv) without `VecTransposeImage`: the agents take the
        envs' channel-last (H, W, 3) uint8 images as they are."""
        if not isinstance(env, VecEnv):
            if monitor_wrapper and not is_wrapped(env, Monitor):
                if verbose >= 1:
                    print("Wrapping the env with a `Monitor` wrapper")
                env = Monitor(env)
            if verbose >= 1:
                print("Wrapping the env in a DummyVecEnv.")
            env = DummyVecEnv([lambda: env])  # type: ignore[list-item, return-value]
        check_for_nested_spaces(env.observation_space)
        return env

    # ------------------------------------------------------------------------------------- setup

    @abstractmethod
    def _make_agent(self, seed: int) -> SACAgent:
        """The agent for this env's spaces, built with `self._agent_options()`."""

    def _example(self) -> tuple[Any, np.ndarray]:
        """A zero observation and action shaped like the env's (the agents read their layout from them)."""
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            obs = {key: np.zeros(sub.shape, sub.dtype) for key, sub in space.spaces.items()}
        else:
            obs = np.zeros(space.shape, space.dtype)
        return obs, np.zeros(self.action_space.shape, np.float32)

    def _agent_options(self) -> dict[str, Any]:
        networks = _network_kwargs(self.policy_kwargs)
        clashes = sorted((set(networks) | set(self._config_overrides)) & set(self.agent_kwargs))
        if clashes:
            raise ValueError(
                f"{clashes} given twice: use the SB3 argument (policy_kwargs net_arch, gamma, tau, "
                "learning_rate) or the agent option, not both"
            )
        return {**networks, **self.agent_kwargs, **self._config_overrides}

    def _setup_model(self) -> None:
        self.set_random_seed(self.seed)
        agent_seed = self.seed if self.seed is not None else _entropy_seed()
        self.agent = self._make_agent(agent_seed)
        config = self.agent.config
        self.gamma, self.tau, self.learning_rate = (
            config.discount,
            config.soft_target_update_rate,
            config.critic_lr,
        )
        self._setup_lr_schedule()
        self.policy = AgentPolicy(self.observation_space, self.action_space, self.agent)
        self.replay_buffer = SB3ReplayBuffer(
            self.buffer_size,
            self.observation_space,
            spaces.Box(-1.0, 1.0, self.action_space.shape, np.float32),
            self.device,
            self.n_envs,
            seed=agent_seed,
        )
        self._check_demo_buffer()
        self._convert_train_freq()

    def _check_demo_buffer(self) -> None:
        if self.demo_buffer is None:
            return
        online = self.replay_buffer.buffers[0]
        for attr in ("observation_space", "action_space", "device"):
            if getattr(self.demo_buffer, attr) != getattr(online, attr):
                raise ValueError(
                    f"demo_buffer has {attr} {getattr(self.demo_buffer, attr)}, "
                    f"expected the env's {getattr(online, attr)}"
                )
        if len(self.demo_buffer) == 0:
            raise ValueError("demo_buffer is empty; insert the demonstrations first")

    # ----------------------------------------------------------------------------------- training

    def _sample(self, size: int) -> dict[str, Any]:
        if self.demo_buffer is None:
            return self.replay_buffer.sample(size)
        online = self.replay_buffer.buffers
        share = (1.0 - self.demo_fraction) / len(online)
        fractions = [self.demo_fraction, *[share] * len(online)]
        return MixedSampler([self.demo_buffer, *online], fractions).sample(size)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """`gradient_steps` SERL updates, each on `batch_size * utd_ratio` transitions."""
        self.policy.set_training_mode(True)
        info = None
        for _ in range(gradient_steps):
            _, info = self.agent.update(self._sample(batch_size * self.utd_ratio), utd_ratio=self.utd_ratio)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if info is not None:
            for key, value in info.items():
                self.logger.record(f"train/{key}", value)

    # ---------------------------------------------------------------------------------- save/load

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "agent", "demo_buffer"]

    @property
    def agent_training_state(self) -> AgentTrainingState:
        return AgentTrainingState(self.agent)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "agent.optimizer", "agent_training_state"], []

    def save_replay_buffer(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        """Write the replay rings to the folder `path` (one pickle-free .npz per env)."""
        self.replay_buffer.save(path)

    def load_replay_buffer(self, path: str | os.PathLike[str], truncate_last_traj: bool = True) -> None:  # type: ignore[override]
        """Read what `save_replay_buffer` wrote (the model must have the same number of envs)."""
        self.replay_buffer.load(path)


class SAC(SerlOffPolicyAlgorithm):
    """SAC with SERL's state recipe (`SACAgent.create_states`): 10 critics subsampled to 2, UTD 8,
    1000 random steps. Observations: a Box, or a Dict whose "state" entry is used; images need `DrQ`."""

    def _make_agent(self, seed: int) -> SACAgent:
        images = image_keys_of(self.observation_space)
        if images:
            raise ValueError(
                f"SAC takes state observations; this env has camera images {list(images)}: use DrQ"
            )
        obs, action = self._example()
        return SACAgent.create_states(
            observations=obs, actions=action, device=self.device, seed=seed, **self._agent_options()
        )


class DrQ(SerlOffPolicyAlgorithm):
    """DrQ with SERL's pixel recipe (`DrQAgent.create_drq`): an encoder per camera (every uint8
    (H, W, 3) entry of the Dict observation), random-shift augmentation, UTD 4, discount 0.96."""

    def __init__(
        self,
        policy: str | type[AgentPolicy],
        env: GymEnv | str | None,
        buffer_size: int = 200_000,
        utd_ratio: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, buffer_size=buffer_size, utd_ratio=utd_ratio, **kwargs)

    def _make_agent(self, seed: int) -> DrQAgent:
        images = image_keys_of(self.observation_space)
        if not images:
            raise ValueError(
                f"DrQ needs camera images (uint8 (H, W, 3) entries of a Dict observation); "
                f"got {self.observation_space}: use SAC"
            )
        obs, action = self._example()
        return DrQAgent.create_drq(
            observations=obs,
            actions=action,
            image_keys=images,
            device=self.device,
            seed=seed,
            **self._agent_options(),
        )

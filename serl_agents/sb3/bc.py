"""SB3-shaped behaviour cloning: SB3's `BaseAlgorithm` around `serl_agents.bc.BCAgent`.

SB3 supplies what its users expect: `learn` with callbacks and progress bar, the logger, `predict`,
`save`/`load` zips, `evaluate_policy`. The BC loss is not written twice: each training step is one
`BCAgent.update` on a batch of demo transitions (Gaussian MLE or MSE, states or pixels).

BC collects no env data, so SB3's step counter counts gradient steps: `learn(total_timesteps=N)` takes
N updates, and callbacks (`n_calls`, `CheckpointCallback` file names, `EvalCallback`'s `eval_freq`),
the progress bar and the logger's x-axis all count updates. The env gives the spaces, is what callbacks
see as `training_env`, and is not stepped by `learn`.

Save format: SB3's zip, as `serl_agents.sb3.SAC` (weights, optimizer moments, update count and RNG
streams through state dicts; other attributes through SB3's cloudpickle, so load only zips you trust).
The demos are not saved: pass them again to `BC.load(path, env=env, demos=...)` to train further.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, PyTorchObs

from serl_agents.bc import BCAgent
from serl_agents.replay import ReplayBuffer
from serl_agents.sb3.algorithm import AgentTrainingState, SerlOffPolicyAlgorithm, _entropy_seed
from serl_agents.sb3.policy import AgentPolicy
from serl_agents.train import image_keys_of

SelfBC = TypeVar("SelfBC", bound="BC")
Demos = str | os.PathLike | Sequence[Mapping[str, Any]] | ReplayBuffer


class BCPolicy(AgentPolicy):
    """`predict` through `BCAgent.sample_actions`. The "mle" Gaussian is not tanh-squashed, so its actions
    are clipped to [-1, 1] (what the envs do anyway) before SB3 rescales them to the action space."""

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return super()._predict(observation, deterministic).clamp(-1.0, 1.0)


class UpdateProgressBar(ProgressBarCallback):
    """SB3's progress bar, advanced by one per gradient step (SB3's advances by `num_envs` env steps)."""

    def _on_step(self) -> bool:
        self.pbar.update(1)
        return True


class BC(BaseAlgorithm):
    """Behaviour cloning with SERL's recipe (`BCAgent.create`: MLP [256, 256] tanh, Gaussian MLE, Adam 3e-4)
    on states (a Box, or a Dict's "state") or pixels (every uint8 (H, W, 3) entry of a Dict observation)."""

    policy_aliases: ClassVar[dict[str, type[BCPolicy]]] = {  # type: ignore[assignment]
        "MlpPolicy": BCPolicy,
        "MultiInputPolicy": BCPolicy,
    }
    policy: BCPolicy
    agent: BCAgent

    def __init__(
        self,
        policy: str | type[BCPolicy],
        env: GymEnv | str | None,
        demos: Demos | None = None,
        learning_rate: float | None = None,
        batch_size: int = 256,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        device: torch.device | str = "auto",
        seed: int | None = None,
        _init_setup_model: bool = True,
        **agent_kwargs: Any,
    ) -> None:
        """
        demos: what to clone: a demo dataset folder (`serl record-demos --out`, read with
            `serl_envs.demos.load_demos`, successful episodes only), a list of transitions as `load_demos`
            returns them, or a `serl_agents.replay.ReplayBuffer`. Checked against the env's spaces here.
            Only observations and actions are used. Optional so `BC.load` can rebuild a model; `learn`
            needs them.
        learning_rate: Adam's learning rate (`BCConfig.lr`); None keeps the recipe's 3e-4.
        batch_size: demo transitions per gradient step (SERL's BC baseline: 256).
        policy_kwargs: only `net_arch` (a list of hidden sizes) is understood.
        agent_kwargs: `BCAgent.create` options and `BCConfig` fields, e.g. `loss="mse"`,
            `lr_decay_steps=5000`; for pixels `encoder="resnet10"`, `encoder_kwargs`, `augment_pad`.
        Other arguments mean what they mean for SB3's algorithms.
        """
        if callable(learning_rate):
            raise ValueError(
                "learning_rate must be a float or None here, not a schedule; "
                "use the agent options lr_warmup_steps / lr_decay_steps for a schedule"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(policy, str) and env is not None:
            SerlOffPolicyAlgorithm._check_policy_name(policy, env)
        if env is None and _init_setup_model:
            raise ValueError("BC needs an env: its spaces shape the policy and are checked against the demos")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,  # type: ignore[arg-type]  (None: resolved from the agent config)
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            support_multi_env=True,
            supported_action_spaces=(spaces.Box,),
        )
        self.demos = demos
        self.batch_size = batch_size
        self.agent_kwargs = dict(agent_kwargs)
        self._lr_override = learning_rate
        if _init_setup_model:
            self._setup_model()

    # This is how SERL's agents read images: channel-last uint8, no `VecTransposeImage`.
    _wrap_env = staticmethod(SerlOffPolicyAlgorithm._wrap_env)

    # ------------------------------------------------------------------------------------- setup

    def _agent_options(self) -> dict[str, Any]:
        unknown = sorted(set(self.policy_kwargs) - {"net_arch"})
        if unknown:
            raise ValueError(
                f"unsupported policy_kwargs {unknown}; supported: ['net_arch'] "
                "(other network options go in policy_network_kwargs)"
            )
        sb3_options: dict[str, Any] = {}
        if "net_arch" in self.policy_kwargs:
            arch = self.policy_kwargs["net_arch"]
            if isinstance(arch, Mapping):
                raise ValueError(f"BC has one network: net_arch is a list of hidden sizes, got {arch}")
            sb3_options["policy_network_kwargs"] = {"hidden_dims": list(arch)}
        if self._lr_override is not None:
            sb3_options["lr"] = self._lr_override
        clashes = sorted(set(sb3_options) & set(self.agent_kwargs))
        if clashes:
            raise ValueError(
                f"{clashes} given twice: use the SB3 argument (policy_kwargs net_arch, learning_rate) "
                "or the agent option, not both"
            )
        return {**self.agent_kwargs, **sb3_options}

    def _setup_model(self) -> None:
        self.set_random_seed(self.seed)
        agent_seed = self.seed if self.seed is not None else _entropy_seed()
        self.agent = BCAgent.create(
            observations=self.observation_space.sample(),  # only its layout is read
            actions=np.zeros(self.action_space.shape, np.float32),
            image_keys=image_keys_of(self.observation_space),
            device=self.device,
            seed=agent_seed,
            **self._agent_options(),
        )
        self.learning_rate = self.agent.config.lr
        self._setup_lr_schedule()
        self.policy = BCPolicy(self.observation_space, self.action_space, self.agent)
        bounds = (self.action_space.low, self.action_space.high)
        self._action_bounds = tuple(torch.tensor(b, dtype=torch.float32).to(self.device) for b in bounds)
        self.demo_buffer = None if self.demos is None else self._demo_buffer(self.demos, agent_seed + 1)

    def _demo_buffer(self, demos: Demos, seed: int) -> ReplayBuffer:
        """The demos as a replay buffer on this model's device, after checking they fit the env's spaces."""
        obs_space, action_space = self.observation_space, self.action_space
        expected = f"the env's observation_space is {obs_space} and action_space {action_space}"
        if isinstance(demos, ReplayBuffer):
            if demos.observation_space != obs_space or demos.action_space != action_space:
                raise ValueError(
                    f"the demo buffer does not match the env: its observation_space is "
                    f"{demos.observation_space} and action_space {demos.action_space}; {expected}"
                )
            if len(demos) == 0:
                raise ValueError("the demo buffer is empty: insert demonstrations first")
            return demos
        if isinstance(demos, (str, os.PathLike)):
            from serl_envs.demos import load_demos, open_demos

            dataset = open_demos(demos)
            if dataset.observation_space != obs_space or dataset.action_space != action_space:
                raise ValueError(
                    f"the demos at {demos} do not match the env: they were recorded with observation_space "
                    f"{dataset.observation_space} and action_space {dataset.action_space}; {expected} "
                    "(record demos on this env: serl record-demos --env ID)"
                )
            transitions = load_demos(demos)
            where = f"the demos at {demos}"
        else:
            transitions, where = list(demos), "the demos"
        if not transitions:
            raise ValueError(f"{where} hold no (successful) transitions to clone")
        buffer = ReplayBuffer(obs_space, action_space, 2 * len(transitions), self.device, seed=seed)
        try:
            buffer.extend(transitions)  # each transition takes at most two frame slots
        except ValueError as err:
            raise ValueError(f"{where} do not match the env: {err}; {expected}") from err
        return buffer

    # ------------------------------------------------------------------------------------- training

    def _sample(self) -> dict[str, Any]:
        """A demo batch with actions rescaled to [-1, 1] (the policy's range; SB3's `predict` maps back)."""
        batch = self.demo_buffer.sample(self.batch_size)  # type: ignore[union-attr]
        low, high = self._action_bounds
        actions = 2.0 * (batch["actions"].to(self.device) - low) / (high - low) - 1.0
        return {"observations": batch["observations"], "actions": actions}

    def train(self) -> dict[str, float]:
        """One `BCAgent.update` on a demo batch; returns its info (actor_loss, mse, mean_std for "mle")."""
        self.policy.set_training_mode(True)  # `predict` (e.g. in an EvalCallback) leaves it in eval mode
        _, info = self.agent.update(self._sample())
        self._n_updates += 1
        return dict(info)

    def learn(
        self: SelfBC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "BC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfBC:
        """`total_timesteps` gradient steps on demo batches; callbacks after each, logs per `log_interval`."""
        if self.demo_buffer is None:
            raise ValueError(
                "BC learns from demonstrations: pass demos=... to BC(...) or BC.load(..., demos=...)"
            )
        if self.env is None:
            raise ValueError("learn needs an env (callbacks see it as training_env): BC.load(path, env=env)")
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            info = self.train()
            self.num_timesteps += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval and self._n_updates % log_interval == 0:
                for key, value in info.items():
                    self.logger.record(f"train/{key}", value)
                self.dump_logs()
            callback.update_locals(locals())
            if not callback.on_step():
                break
        callback.on_training_end()
        return self

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        callback = super()._init_callback(callback, progress_bar=False)
        if progress_bar:
            callback = CallbackList([callback, UpdateProgressBar()])
            callback.init_callback(self)
        return callback

    def dump_logs(self) -> None:
        """SB3's time/* keys, counting gradient steps (`time/fps` is updates per second), and train/*."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # ---------------------------------------------------------------------------------- save/load

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "agent", "demos", "demo_buffer", "_action_bounds"]

    @property
    def agent_training_state(self) -> AgentTrainingState:
        return AgentTrainingState(self.agent)  # type: ignore[arg-type]  (BCAgent has the same step and rngs)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "agent.optimizer", "agent_training_state"], []

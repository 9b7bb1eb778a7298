"""The synchronous training loop behind `serl train`: one process, env steps interleaved with high-UTD updates.

Shared by every agent and task. A run directory holds config.json, TensorBoard logs (tb/), eval.csv (env steps,
wall time, eval return, eval success rate), evaluation videos and resumable checkpoints (agent + replay buffer +
loop state, written to a fresh folder and then pointed to, so a crash never leaves a half checkpoint).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from serl_agents.config import TrainConfig
from serl_agents.evaluate import EvalResult, evaluate
from serl_agents.replay import MixedSampler, ReplayBuffer
from serl_agents.replay.fields import GRASP_PENALTY
from serl_agents.stop_signals import StopSignals
from serl_agents.vice import make_vice

LATEST = "latest"  # file in checkpoints/ naming the newest complete checkpoint folder


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_env(env_id: str, render: bool = False, env_kwargs: Mapping[str, Any] | None = None) -> gym.Env:
    """gym.make(env_id, **env_kwargs), rgb_array rendering when `render`, with an error listing the serl IDs."""
    import serl_envs  # noqa: F401  (registers the Serl* IDs)

    try:
        return gym.make(env_id, render_mode="rgb_array" if render else None, **(env_kwargs or {}))
    except gym.error.Error as err:
        serl_ids = sorted(i for i in gym.registry if i.startswith("Serl"))
        raise ValueError(f"unknown env {env_id!r}: {err}. Registered serl IDs: {serl_ids}") from err


def gripper_task(env: gym.Env):
    """The serl_envs task of `env` when its action ends in a gripper dimension, else None."""
    task = getattr(env.unwrapped, "task", None)
    return task if task is not None and task.layout.gripper else None


def uses_grasp_critic(cfg: TrainConfig, env: gym.Env) -> bool:
    """Resolve `cfg.grasp_critic` for this env: 'auto' is on for sac/drq on tasks with a gripper; 'on' on a
    task without one is an error (a grasp critic would drive an action dimension that is not a gripper)."""
    if cfg.grasp_critic == "off" or cfg.agent not in ("sac", "drq"):
        return False
    if gripper_task(env) is not None:
        return True
    if cfg.grasp_critic == "on":
        raise ValueError(
            f"grasp_critic 'on' needs a task whose action has a gripper dimension; {cfg.env} has none "
            f"(action space {env.action_space}): use --grasp-critic off or auto"
        )
    return False


def with_learned_gripper(env: gym.Env, penalty: float) -> gym.Env:
    """HIL-SERL's learned-gripper stack around `env` (and its InterventionWrapper, whose executed action
    both wrappers follow): GripperPenaltyWrapper reports `info["grasp_penalty"]` on toggles,
    GripperHoldWrapper turns the grasp critic's "stay" (0) into the last open/close command."""
    from serl_agents.grasp import GripperHoldWrapper
    from serl_envs.wrappers import GripperPenaltyWrapper

    return GripperHoldWrapper(GripperPenaltyWrapper(env, penalty))


def grasp_penalties(transitions: list[dict], penalty: float, initial_closed: bool) -> list[dict]:
    """`transitions` (in episode order, `dones` at each end) with the `grasp_penalty` that
    GripperPenaltyWrapper would have reported for their actions: for demos recorded without it (scripted
    expert, Minari datasets)."""
    from serl_envs.wrappers.gripper_penalty import CLOSE_ABOVE, OPEN_BELOW

    out, closed = [], initial_closed
    for t in transitions:
        command = float(np.asarray(t["actions"], dtype=np.float64).reshape(-1)[-1])
        now = True if command > CLOSE_ABOVE else False if command < OPEN_BELOW else closed
        out.append({**t, GRASP_PENALTY: penalty if now != closed else 0.0})
        closed = initial_closed if t["dones"] else now
    return out


def image_keys_of(space: gym.Space) -> tuple[str, ...]:
    if not isinstance(space, gym.spaces.Dict):
        return ()
    return tuple(k for k, s in space.spaces.items() if s.dtype == np.uint8 and len(s.shape) == 3)


def make_agent(
    cfg: TrainConfig, observation_space: gym.Space, action_space: gym.Space, device: torch.device,
    grasp_critic: bool = False,
):
    """Build the agent for an env's spaces from one example observation and action (no env needed).

    `grasp_critic` (resolved by `uses_grasp_critic`): GraspSACAgent / GraspDrQAgent, whose actor drives every
    action dimension but the last (the gripper), chosen by the grasp critic."""
    from serl_agents import BCAgent, DrQAgent, SACAgent
    from serl_agents.grasp import GraspDrQAgent, GraspSACAgent

    if grasp_critic and cfg.agent not in ("sac", "drq"):
        raise ValueError(f"a grasp critic needs agent 'sac' or 'drq', got {cfg.agent!r}")
    sac_cls, drq_cls = (GraspSACAgent, GraspDrQAgent) if grasp_critic else (SACAgent, DrQAgent)

    obs = observation_space.sample()
    action = action_space.sample()
    images = image_keys_of(observation_space)
    kwargs: dict[str, Any] = {"device": device, "seed": cfg.seed, **cfg.agent_kwargs}
    if cfg.agent == "sac":
        if images:
            raise ValueError(f"agent 'sac' takes state observations; {cfg.env} has images {images}: use --agent drq")
        return sac_cls.create_states(observations=obs, actions=action, **kwargs)
    if cfg.agent == "drq":
        if not images:
            raise ValueError(f"agent 'drq' needs image observations; {cfg.env} has none: use --agent sac")
        return drq_cls.create_drq(observations=obs, actions=action, image_keys=images, **kwargs)
    return BCAgent.create(observations=obs, actions=action, image_keys=images, **kwargs)


def make_transition(
    obs, action, reward, terminated: bool, truncated: bool, next_obs, grasp_penalty: float | None = None
) -> dict[str, Any]:
    """The replay buffer's transition: masks = 1 - terminated (a time limit still bootstraps), dones = episode
    end; `grasp_penalty` (for buffers that store it) is the step's `info["grasp_penalty"]`, 0.0 if absent."""
    transition = {
        "observations": obs, "actions": action, "rewards": reward, "masks": 1.0 - float(terminated),
        "dones": terminated or truncated, "next_observations": next_obs,
    }
    if grasp_penalty is not None:
        transition[GRASP_PENALTY] = float(grasp_penalty)
    return transition


def training_batch(
    replay: ReplayBuffer, demo_buffer: ReplayBuffer | None, size: int, demo_fraction: float, utd_ratio: int = 1
) -> dict:
    """`size` transitions: from the online buffer, or `demo_fraction` of them from the demo buffer (RLPD 50/50) in
    each of the `utd_ratio` minibatches that `agent.update(batch, utd_ratio)` cuts the batch into."""
    if demo_buffer is None or len(demo_buffer) == 0:
        return replay.sample(size)
    return MixedSampler([demo_buffer, replay], (demo_fraction, 1.0 - demo_fraction)).sample(size, chunks=utd_ratio)


def write_checkpoint(
    checkpoint_dir: Path, step: int, agent, buffers: dict[str, ReplayBuffer], loop: dict[str, Any],
    extras: dict[str, Any] | None = None,
) -> Path:
    """Write agent, buffers (`<name>.npz`), extras (`<name>.pt`, e.g. VICE) and loop state into a new folder, then
    point `latest` at it (atomically)."""
    folder = checkpoint_dir / f"step_{step:09d}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    agent.save(tmp / "agent.pt")
    for name, buffer in buffers.items():
        buffer.save(tmp / f"{name}.npz")
    for name, extra in (extras or {}).items():
        extra.save(tmp / f"{name}.pt")
    (tmp / "loop.json").write_text(json.dumps(loop))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    pointer = checkpoint_dir / (LATEST + ".tmp")
    pointer.write_text(folder.name)
    os.replace(pointer, checkpoint_dir / LATEST)
    for old in sorted(checkpoint_dir.glob("step_*"))[:-2]:  # keep the two newest
        if old != folder and not old.name.endswith(".tmp"):
            shutil.rmtree(old)
    return folder


def read_checkpoint(
    folder: Path, agent_cls: type, device: torch.device, grasp_critic: bool, cfg: TrainConfig
) -> tuple[Any, ReplayBuffer, ReplayBuffer | None]:
    """A checkpoint's agent, online buffer and demo buffer (None when it saved none); refused when its buffer
    layout (with/without grasp penalties) is not this run's. Shared by the Trainer and the async learner."""
    replay = ReplayBuffer.load(folder / "replay.npz", device=device)
    if replay.layout.grasp_penalty != grasp_critic:
        saved = "with" if replay.layout.grasp_penalty else "without"
        raise ValueError(
            f"{folder} was written by a run {saved} a grasp critic, but this run has grasp_critic="
            f"{cfg.grasp_critic!r} on {cfg.env}: resume with the run's setting or use a new --out"
        )
    agent = agent_cls.load(folder / "agent.pt", device=device)
    demos = ReplayBuffer.load(folder / "demos.npz", device=device) if (folder / "demos.npz").exists() else None
    return agent, replay, demos


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None when there is none."""
    pointer = checkpoint_dir / LATEST
    return checkpoint_dir / pointer.read_text().strip() if pointer.exists() else None


def log_eval(out: Path, writer, step: int, wall_time: float, result: EvalResult) -> None:
    """TensorBoard scalars and one eval.csv row (env steps, wall time, return, success rate)."""
    writer.add_scalar("eval/success_rate", result.success_rate, step)
    writer.add_scalar("eval/return", result.mean_return, step)
    csv_path = out / "eval.csv"
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["env_steps", "wall_time", "eval_return", "eval_success_rate"])
        w.writerow([step, round(wall_time, 3), result.mean_return, result.success_rate])


def expert_transitions(
    env_id: str, episodes: int, seed: int, env_kwargs: Mapping[str, Any] | None = None
) -> list[dict]:
    """Successful episodes of the scripted expert (sim IDs), as replay transitions."""
    from serl_envs.experts import make_expert

    env = make_env(env_id, env_kwargs=env_kwargs)
    expert = make_expert(env)
    transitions: list[dict] = []
    kept, attempt = 0, 0
    while kept < episodes:
        if attempt >= 3 * episodes:
            raise RuntimeError(f"the expert of {env_id} succeeded in only {kept} of {attempt} episodes")
        obs, _ = env.reset(seed=seed + 2_000_000 + attempt)
        expert.reset()
        episode, done = [], False
        while not done:
            action = expert(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            episode.append({"observations": obs, "actions": action, "rewards": reward, "masks": 1.0 - float(terminated),
                            "dones": done, "next_observations": next_obs})
            obs = next_obs
        attempt += 1
        if info["is_success"]:
            transitions.extend(episode)
            kept += 1
    env.close()
    return transitions


def demo_transitions(cfg: TrainConfig) -> list[dict]:
    """The run's demos as replay transitions: the scripted expert's (`n_expert_demos`) or the `--demos` dataset's."""
    if cfg.n_expert_demos:
        return expert_transitions(cfg.env, cfg.n_expert_demos, cfg.seed, cfg.env_kwargs)
    from serl_envs.demos import load_demos

    return load_demos(cfg.demos)


def with_intervention(
    env: gym.Env, device: str, expert_fraction: float, expert_episodes: int | None = None
) -> gym.Env:
    """HIL-SERL: a person (or the scripted expert) can take over any step; see serl_envs.wrappers.

    The scripted expert takes the last `expert_fraction` of each episode, in the first `expert_episodes`
    episodes only when that is given (counted per env from its first reset)."""
    from serl_envs.wrappers import InterventionWrapper
    from serl_envs.wrappers.devices import ExpertDevice, make_device

    if device != "expert":
        return InterventionWrapper(env, make_device(device, env))
    if expert_episodes is None:
        return InterventionWrapper(env, ExpertDevice(env, active_fraction=expert_fraction))
    horizon = env.spec.max_episode_steps if env.spec is not None else None
    if horizon is None:
        raise ValueError("intervention_episodes needs an env with max_episode_steps (registered TimeLimit)")
    start = round((1.0 - expert_fraction) * horizon)
    handle = ExpertDevice(env, schedule=lambda episode, step: episode < expert_episodes and step >= start)
    return InterventionWrapper(env, handle)


@dataclass
class LoopState:
    """What the loop needs besides agent and buffer to continue a run."""

    step: int = 0
    episode: int = 0
    wall_time: float = 0.0


class Trainer:
    """The synchronous `serl train` loop: one process steps the env and updates the agent (`--async` splits them).

    Ctrl-C or SIGTERM stops it between two steps with a checkpoint written, so `--resume true` continues exactly."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.stop_reason: str | None = None  # set by Ctrl-C ("interrupt") or SIGTERM ("pause") between steps
        self.checkpoint_step: int | None = None  # step of the last checkpoint this process wrote
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self.device = resolve_device(cfg.device)
        self.env = make_env(cfg.env, env_kwargs=cfg.env_kwargs)
        try:
            self.grasp_critic = uses_grasp_critic(cfg, self.env)  # HIL-SERL's learned gripper
        except ValueError:
            self.env.close()
            raise
        if cfg.intervention is not None:
            self.env = with_intervention(self.env, cfg.intervention, cfg.intervention_fraction,
                                         cfg.intervention_episodes)
        self.eval_env = make_env(cfg.env, render=cfg.video, env_kwargs=cfg.env_kwargs)
        if self.grasp_critic:
            self.env = with_learned_gripper(self.env, cfg.grasp_penalty)
            self.eval_env = with_learned_gripper(self.eval_env, cfg.grasp_penalty)
        self.agent = make_agent(cfg, self.env.observation_space, self.env.action_space, self.device,
                                grasp_critic=self.grasp_critic)
        self.replay = self._new_buffer(cfg.replay_capacity, cfg.seed)
        self.demo_buffer = self._load_demos() if cfg.demos is not None or cfg.n_expert_demos else None
        self.vice = None  # with --reward vice: the online success classifier whose output replaces batch rewards
        if cfg.reward == "vice":
            images = image_keys_of(self.env.observation_space)
            self.vice = make_vice(cfg.goal_examples, images, self.device, cfg.seed, **cfg.vice_kwargs)
        self.state = LoopState()
        self.action_rng = np.random.default_rng(cfg.seed)
        self.recent_success: deque[bool] = deque(maxlen=20)

    # --- data ---------------------------------------------------------------------------------------------------
    def _new_buffer(self, capacity: int, seed: int) -> ReplayBuffer:
        """A buffer for this run's spaces; it stores grasp_penalty when the run has a grasp critic."""
        return ReplayBuffer(self.env.observation_space, self.env.action_space, capacity, self.device,
                            seed=seed, grasp_penalty=self.grasp_critic)

    def _load_demos(self) -> ReplayBuffer:
        transitions = demo_transitions(self.cfg)
        if self.cfg.agent == "bc" and transitions:
            self._fit_bc_normalization(transitions)
        if self.grasp_critic:
            initial_closed = gripper_task(self.env).initial_gripper > 0.5  # as GripperPenaltyWrapper starts
            transitions = grasp_penalties(transitions, self.cfg.grasp_penalty, initial_closed)
        # Room for the demos, plus for every intervention when a person (or the expert) can take over.
        room = self.cfg.replay_capacity if self.cfg.intervention is not None else 0
        buffer = self._new_buffer(max(len(transitions) * 2, 16) + room, self.cfg.seed + 1)
        buffer.extend(transitions)
        return buffer

    def _fit_bc_normalization(self, transitions: list[dict]) -> None:
        """BC standardises states with every demo state's mean/std (a resumed run loads them instead)."""
        if not self.agent.config.normalize_observations or self.agent.obs_spec.state_dim is None:
            return
        observations = [t["observations"] for t in transitions]
        if isinstance(observations[0], dict):
            observations = [o["state"] for o in observations]
        self.agent.fit_normalization(np.stack(observations))

    def intervention_buffer(self) -> ReplayBuffer:
        """The demo buffer, created empty on the first intervention when the run has no demos."""
        if self.demo_buffer is None:
            self.demo_buffer = self._new_buffer(self.cfg.replay_capacity, self.cfg.seed + 1)
        return self.demo_buffer

    def sample_batch(self) -> dict:
        size = self.cfg.batch_size * self.cfg.utd_ratio
        return training_batch(self.replay, self.demo_buffer, size, self.cfg.demo_fraction, self.cfg.utd_ratio)

    # --- checkpoints ----------------------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self) -> Path:
        """Agent, replay buffer and loop state (see `write_checkpoint`)."""
        buffers = {"replay": self.replay}
        if self.cfg.intervention is not None and self.demo_buffer is not None:  # interventions are collected data too
            buffers["demos"] = self.demo_buffer
        folder = write_checkpoint(self.checkpoint_dir, self.state.step, self.agent, buffers,
                                  self.state.__dict__, {"vice": self.vice} if self.vice is not None else None)
        self.checkpoint_step = self.state.step
        return folder

    def load_checkpoint(self) -> bool:
        folder = latest_checkpoint(self.checkpoint_dir)
        if folder is None:
            return False
        self.agent, self.replay, demos = read_checkpoint(folder, type(self.agent), self.device, self.grasp_critic,
                                                          self.cfg)
        if demos is not None:
            self.demo_buffer = demos
        if self.vice is not None:
            self.vice.load_state(folder / "vice.pt")
        self.state = LoopState(**json.loads((folder / "loop.json").read_text()))
        return True

    # --- evaluation -----------------------------------------------------------------------------------------------
    def policy(self, obs) -> np.ndarray:
        return self.agent.sample_actions(obs, deterministic=True)

    def run_eval(self, writer) -> EvalResult:
        video = self.out / "videos" / f"step_{self.state.step:09d}.mp4" if self.cfg.video else None
        result = evaluate(self.policy, self.eval_env, self.cfg.eval_episodes, self.cfg.seed, video)
        log_eval(self.out, writer, self.state.step, self.state.wall_time, result)
        return result

    # --- the loops --------------------------------------------------------------------------------------------------
    def train(self) -> EvalResult | None:
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume and self.load_checkpoint():
            print(f"resumed from step {self.state.step} ({len(self.replay)} transitions in the buffer)")
        (self.out / "config.json").write_text(cfg.to_json())
        writer = SummaryWriter(str(self.out / "tb"))
        try:
            with StopSignals(self, lambda reason: "stopping after this step; a checkpoint follows"):
                result = self._train_offline(writer) if cfg.agent == "bc" else self._train_online(writer)
            if self.stop_reason is not None:  # Ctrl-C / SIGTERM: keep every transition and the exact loop state
                done = self.checkpoint_step == self.state.step  # the periodic checkpoint of this very step
                folder = latest_checkpoint(self.checkpoint_dir) if done else self.save_checkpoint()
                print(f"stopped at step {self.state.step} of {cfg.steps}: checkpoint {folder}; "
                      f"continue with --resume true --out {self.out}", flush=True)
            return result
        finally:
            writer.close()
            self.env.close()
            self.eval_env.close()

    def _periodic(self, writer, bar) -> EvalResult | None:
        """Evaluation and checkpoint at their periods and at the last step."""
        cfg, step, result = self.cfg, self.state.step, None
        if step % cfg.eval_every == 0 or step == cfg.steps:
            result = self.run_eval(writer)
            bar.write(f"step {step}: eval success {result.success_rate:.0%}, return {result.mean_return:.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            self.save_checkpoint()
        return result

    def _progress(self, desc: str) -> tqdm:
        return tqdm(total=self.cfg.steps, initial=self.state.step, desc=desc, unit="step",
                    disable=os.environ.get("SERL_NO_PROGRESS") == "1")

    def _train_offline(self, writer) -> EvalResult | None:
        """BC: `steps` gradient steps on the demo buffer, evaluated in the env."""
        if self.demo_buffer is None:
            raise ValueError("agent 'bc' learns from demonstrations: pass --demos DATASET (see `serl record-demos`)")
        result = None
        start = time.perf_counter() - self.state.wall_time
        bar = self._progress(f"bc {self.cfg.env}")
        while self.state.step < self.cfg.steps and self.stop_reason is None:
            _, info = self.agent.update(self.demo_buffer.sample(self.cfg.batch_size))
            self.state.step += 1
            self.state.wall_time = time.perf_counter() - start
            if self.state.step % self.cfg.log_every == 0:
                for key, value in info.items():
                    writer.add_scalar(f"train/{key}", value, self.state.step)
                bar.set_postfix(loss=f"{info['actor_loss']:.3f}")
            result = self._periodic(writer, bar) or result
            bar.update(1)
        bar.close()
        return result

    def _train_online(self, writer) -> EvalResult | None:
        cfg = self.cfg
        obs, _ = self.env.reset(seed=cfg.seed * 100_003 + self.state.episode)
        episode_return, result, updates, info, intervened_steps, episode_steps = 0.0, None, 0, None, 0, 0
        start = time.perf_counter() - self.state.wall_time
        bar = self._progress(f"{cfg.agent} {cfg.env}")
        while self.state.step < cfg.steps and self.stop_reason is None:
            if self.state.step < cfg.random_steps:
                action = self.action_rng.uniform(-1, 1, self.env.action_space.shape).astype(np.float32)
            else:
                action = self.agent.sample_actions(obs)
            next_obs, reward, terminated, truncated, step_info = self.env.step(action)
            executed = step_info.get("intervene_action", action)  # a person's correction replaces the policy's
            penalty = float(step_info.get(GRASP_PENALTY, 0.0)) if self.grasp_critic else None
            transition = make_transition(obs, executed, reward, terminated, truncated, next_obs, penalty)
            self.replay.insert(transition)
            if "intervene_action" in step_info:  # HIL-SERL: corrections also go to the demo buffer
                self.intervention_buffer().insert(transition)
                intervened_steps += 1
            obs = next_obs
            episode_return += float(reward)
            episode_steps += 1
            self.state.step += 1
            if terminated or truncated:
                self.recent_success.append(bool(step_info.get("is_success", False)))
                writer.add_scalar("train/episode_return", episode_return, self.state.step)
                if self.cfg.intervention is not None:
                    writer.add_scalar("train/intervention_rate", intervened_steps / episode_steps, self.state.step)
                intervened_steps = episode_steps = 0
                self.state.episode += 1
                obs, _ = self.env.reset(seed=cfg.seed * 100_003 + self.state.episode)
                episode_return = 0.0
            if self.state.step >= cfg.training_starts and len(self.replay) >= cfg.batch_size:
                batch = self.sample_batch()
                if self.vice is not None:  # VICE: one classifier step, then its rewards replace the env's
                    batch, vice_info = self.vice.relabel(batch)
                _, info = self.agent.update(batch, utd_ratio=cfg.utd_ratio)
                if self.vice is not None:
                    info = {**info, **vice_info}
                updates += cfg.utd_ratio
            self.state.wall_time = time.perf_counter() - start
            if self.state.step % cfg.log_every == 0:
                if info is not None:
                    for key, value in info.items():
                        writer.add_scalar(f"train/{key}", value, self.state.step)
                success = float(np.mean(self.recent_success)) if self.recent_success else 0.0
                writer.add_scalar("train/success_rate", success, self.state.step)
                bar.set_postfix(success=f"{success:.0%}", updates_per_s=f"{updates / max(self.state.wall_time, 1e-9):.0f}")
            result = self._periodic(writer, bar) or result
            bar.update(1)
        bar.close()
        return result


def train(cfg: TrainConfig) -> EvalResult | None:
    return Trainer(cfg).train()

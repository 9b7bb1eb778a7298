"""The learner: owns the agent and the replay buffers, trains at its own pace, publishes policy weights.

It runs as one Ray actor with two threads: `run()` (the training loop) and a data thread that answers the actors
(`register_actor`, `add_transitions`, `get_weights`) and the launcher (`status`, `request_stop`). The data thread
never touches the agent or the buffers: it validates a batch, counts it and queues it, so an actor's call is
answered in microseconds even while the loop is updating, evaluating or writing a checkpoint. The loop drains the
queue into the buffers between updates, so the buffers, the agent and every checkpoint are only ever touched by
one thread and a checkpoint is always a consistent snapshot.

The run's env-step counter is the number of transitions accepted. Once it reaches `TrainConfig.steps`, or a
stop was requested, further batches are refused (their rows are not counted or stored) and every reply tells the
actor to stop, so a finished run holds exactly `steps` transitions, as the synchronous loop does.

With HIL-SERL's learned gripper (`grasp_critic`, resolved by the actors from their env) the agent is the grasp
agent, every buffer (online, demo, interventions) stores `grasp_penalty`, the published weights include the grasp
critic, and the evaluation env has the same gripper wrappers as the actors' envs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from serl_agents.config import TrainConfig
from serl_agents.distributed.config import AsyncConfig
from serl_agents.distributed.weights import Weights, frozen_names, policy_weights
from serl_agents.evaluate import EvalResult, evaluate
from serl_agents.replay import ReplayBuffer
from serl_agents.train import (
    LoopState,
    demo_transitions,
    grasp_penalties,
    latest_checkpoint,
    log_eval,
    make_agent,
    make_env,
    read_checkpoint,
    resolve_device,
    training_batch,
    with_learned_gripper,
    write_checkpoint,
)

RECENT_EPISODES = 20  # episodes behind the logged train/success_rate and train/intervention_rate


@dataclass
class AsyncLoopState(LoopState):
    """LoopState (step = transitions stored, episode, wall_time) plus what an async run adds."""

    starts: dict[str, int] = field(default_factory=dict)  # actor index -> times it started (seeds its episodes)
    intervened: int = 0  # transitions a person (device) drove, also stored in the demo buffer


def select_rows(transitions: dict[str, Any], rows: np.ndarray | slice) -> dict[str, Any]:
    """The given rows of a batch of transitions (dict observations included)."""

    def pick(value: Any) -> Any:
        return {k: v[rows] for k, v in value.items()} if isinstance(value, dict) else value[rows]

    return {k: pick(v) for k, v in transitions.items()}


class Learner:
    """Agent + online buffer (+ demo buffer) + the update loop. Built from the env's spaces, never from the env
    itself, so it can run on a GPU machine that cannot reach the robot.

    Args:
        cfg: the training recipe (agent, steps, UTD, batch size, checkpoints, evaluation).
        acfg: the async settings (publication period, evaluation on or off).
        observation_space, action_space: the actors' env spaces.
        grasp_critic: HIL-SERL's learned gripper (`uses_grasp_critic` of the actors' env, see `Actor.learner_setup`).
        initial_gripper_closed: whether the env's gripper starts closed (the grasp penalties of loaded demos).
    """

    def __init__(
        self, cfg: TrainConfig, acfg: AsyncConfig, observation_space: gym.Space, action_space: gym.Space,
        grasp_critic: bool = False, initial_gripper_closed: bool = False,
    ) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")
        os.nice(acfg.learner_nice)  # this process only: Ray starts a fresh one per learner
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self.cfg, self.acfg = cfg, acfg
        self.out = Path(cfg.out)
        self.spaces = (observation_space, action_space)
        self.grasp_critic, self.initial_gripper_closed = grasp_critic, initial_gripper_closed
        self.device = resolve_device(cfg.device)
        self.agent = make_agent(cfg, observation_space, action_space, self.device, grasp_critic=grasp_critic)
        self.replay = self._new_buffer(cfg.replay_capacity, cfg.seed)
        self.demo_buffer: ReplayBuffer | None = None
        self.state = AsyncLoopState()
        self.resumed = bool(cfg.resume) and self._load_checkpoint()
        if self.demo_buffer is None and (cfg.demos is not None or cfg.n_expert_demos):
            self.demo_buffer = self._load_demos()
        self._lock = threading.Lock()  # guards the inbox, the counters below and the stop flags
        self._inbox: deque[tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]] = deque()
        self._new_data = threading.Event()
        self._accepted = self.state.step  # transitions accepted (stored + queued)
        self._per_actor: dict[int, dict[str, Any]] = {}
        self._stop_requested = False
        self._checkpoint_on_stop = False
        self._frozen = frozen_names(self.agent)
        self._full = policy_weights(self.agent, self.agent.step, include_frozen=True)
        self._weights = self._full
        self._info: Mapping[str, float] = {}  # the last update's scalars, read from the device when logged
        self._recent: deque[tuple[bool, int, int]] = deque(maxlen=RECENT_EPISODES)
        self._eval_env: gym.Env | None = None
        self._last_eval: EvalResult | None = None

    # --- buffers and checkpoints ---------------------------------------------------------------------------------
    def _new_buffer(self, capacity: int, seed: int) -> ReplayBuffer:
        """A buffer for the actors' spaces; it stores grasp_penalty when the run has a grasp critic."""
        return ReplayBuffer(*self.spaces, capacity, self.device, seed=seed, grasp_penalty=self.grasp_critic)

    def _new_demo_buffer(self, extra: int = 0) -> ReplayBuffer:
        # Room for the demos and as many intervened transitions as the online buffer holds.
        return self._new_buffer(self.cfg.replay_capacity + extra, self.cfg.seed + 1)

    def _load_demos(self) -> ReplayBuffer:
        transitions = demo_transitions(self.cfg)
        if self.grasp_critic:
            transitions = grasp_penalties(transitions, self.cfg.grasp_penalty, self.initial_gripper_closed)
        buffer = self._new_demo_buffer(extra=2 * len(transitions))
        buffer.extend(transitions)
        return buffer

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self) -> Path:
        buffers = {"replay": self.replay}
        if self.demo_buffer is not None:
            buffers["demos"] = self.demo_buffer
        with self._lock:  # an actor registering updates `starts`
            loop = dataclasses.asdict(self.state)
        return write_checkpoint(self.checkpoint_dir, self.state.step, self.agent, buffers, loop)

    def _load_checkpoint(self) -> bool:
        folder = latest_checkpoint(self.checkpoint_dir)
        if folder is None:
            return False
        self.agent, self.replay, demos = read_checkpoint(folder, type(self.agent), self.device, self.grasp_critic,
                                                          self.cfg)
        if demos is not None:
            self.demo_buffer = demos
        self.state = AsyncLoopState(**json.loads((folder / "loop.json").read_text()))
        return True

    # --- the data thread's API ------------------------------------------------------------------------------------
    def register_actor(self, index: int) -> dict[str, Any]:
        """An actor (re)starting: its start count (it seeds the actor's episodes) and the latest full weights."""
        with self._lock:
            starts = self.state.starts.get(str(index), 0) + 1
            self.state.starts[str(index)] = starts
            self._per_actor.setdefault(index, {"transitions": 0, "starts": []})["starts"].append(
                {"start": starts, "first_version": None, "last_version": None}
            )
            latest = self._weights
            step = self._accepted
        full = Weights(latest.version, latest.published_at, {**self._full.arrays, **latest.arrays})
        return {"start": starts, "step": step, "weights": full}

    def add_transitions(
        self, index: int, batch: dict[str, Any], intervened: np.ndarray, episodes: list[dict[str, Any]],
        version: int,
    ) -> dict[str, Any]:
        """Queue a batch of transitions (arrays with a leading axis N) from actor `index`, acting with weights
        `version`; `intervened[i]` marks rows a person drove; `episodes` are the episodes that ended in it.

        Returns how many rows were accepted, the run's step count, whether the actor should stop, and the latest
        weights version (so an actor only pulls when there is something new).
        """
        self.replay.layout.check(batch, batch=True)  # a bad batch fails the actor's call, not the loop
        intervened = np.asarray(intervened, dtype=bool)
        rows = len(batch["rewards"])
        if intervened.shape != (rows,):
            raise ValueError(f"intervened has shape {intervened.shape}, expected ({rows},) for {rows} transitions")
        with self._lock:
            take = 0 if self._stop_requested else max(0, min(rows, self.cfg.steps - self._accepted))
            if take:
                self._inbox.append((select_rows(batch, slice(0, take)), intervened[:take], episodes))
                self._accepted += take
                record = self._per_actor.setdefault(index, {"transitions": 0, "starts": []})
                record["transitions"] += take
                if record["starts"]:
                    current = record["starts"][-1]
                    current["last_version"] = version
                    if current["first_version"] is None:
                        current["first_version"] = version
            stop = self._stop_requested or self._accepted >= self.cfg.steps
            step = self._accepted
        self._new_data.set()
        return {"accepted": take, "step": step, "stop": stop, "version": self._weights.version}

    def get_weights(self, have_version: int) -> Weights | None:
        """The latest publication if it is newer than `have_version`, else None (nothing to transfer)."""
        latest = self._weights
        return latest if latest.version != have_version else None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "step": self.state.step, "accepted": self._accepted, "updates": self.agent.step,
                "agent": type(self.agent).__name__,
                "version": self._weights.version, "episodes": self.state.episode, "buffer": len(self.replay),
                "demo_buffer": 0 if self.demo_buffer is None else len(self.demo_buffer),
                "intervened": self.state.intervened, "resumed": self.resumed,
                "actors": {i: {"transitions": r["transitions"], "starts": [dict(s) for s in r["starts"]]}
                           for i, r in self._per_actor.items()},
            }

    def request_stop(self, checkpoint: bool) -> None:
        """Refuse further transitions and end `run()`; with `checkpoint`, write one first (pause)."""
        with self._lock:
            self._stop_requested = True
            self._checkpoint_on_stop = self._checkpoint_on_stop or checkpoint
        self._new_data.set()

    # --- the loop -------------------------------------------------------------------------------------------------
    def _publish(self) -> None:
        self._weights = policy_weights(self.agent, self.agent.step, include_frozen=not self._frozen)

    def _drain(self, writer) -> int:
        """Move queued batches into the buffers; intervened rows go to the demo buffer too (HIL-SERL)."""
        with self._lock:
            items, self._inbox = list(self._inbox), deque()
        stored = 0
        for transitions, intervened, episodes in items:
            self.replay.insert_batch(transitions)
            if intervened.any():
                if self.demo_buffer is None:
                    self.demo_buffer = self._new_demo_buffer()
                self.demo_buffer.insert_batch(select_rows(transitions, np.flatnonzero(intervened)))
                self.state.intervened += int(intervened.sum())
            stored += len(intervened)
            for ep in episodes:
                self.state.episode += 1
                self._recent.append((bool(ep["success"]), int(ep["interventions"]), int(ep["length"])))
                writer.add_scalar("train/episode_return", ep["return"], self.state.step + stored)
        self.state.step += stored
        return stored

    def _crossed(self, before: int, every: int) -> bool:
        return self.state.step // every > before // every

    def _evaluate(self, writer) -> None:
        if self._eval_env is None:
            self._eval_env = make_env(self.cfg.env, render=self.cfg.video, env_kwargs=self.cfg.env_kwargs)
            if self.grasp_critic:
                self._eval_env = with_learned_gripper(self._eval_env, self.cfg.grasp_penalty)
        video = self.out / "videos" / f"step_{self.state.step:09d}.mp4" if self.cfg.video else None
        policy = lambda obs: self.agent.sample_actions(obs, deterministic=True)  # noqa: E731
        result = evaluate(policy, self._eval_env, self.cfg.eval_episodes, self.cfg.seed, video)
        log_eval(self.out, writer, self.state.step, self.state.wall_time, result)
        self._last_eval = result

    def _log(self, writer) -> None:
        step = self.state.step
        for key, value in self._info.items():
            writer.add_scalar(f"train/{key}", value, step)
        writer.add_scalar("train/updates", self.agent.step, step)
        writer.add_scalar("train/updates_per_s", self.agent.step / max(self.state.wall_time, 1e-9), step)
        if self._recent:
            success, interventions, length = zip(*self._recent, strict=True)
            writer.add_scalar("train/success_rate", float(np.mean(success)), step)
            writer.add_scalar("train/intervention_rate", sum(interventions) / max(sum(length), 1), step)

    def _ready_to_train(self) -> bool:
        return self.state.step >= self.cfg.training_starts and len(self.replay) >= self.cfg.batch_size

    def run(self) -> dict[str, Any]:
        """Train until the run has `steps` transitions or a stop is requested; returns a summary."""
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(self.out / "tb"))
        start = time.perf_counter() - self.state.wall_time
        size = cfg.batch_size * cfg.utd_ratio
        try:
            while True:
                before = self.state.step
                if self._drain(writer):
                    self.state.wall_time = time.perf_counter() - start
                    if self._crossed(before, cfg.log_every):
                        self._log(writer)
                    if self.state.step < cfg.steps:
                        if self.acfg.evaluate and self._crossed(before, cfg.eval_every):
                            self._evaluate(writer)
                        if self._crossed(before, cfg.checkpoint_every):
                            self.save_checkpoint()
                with self._lock:
                    stopping = self._stop_requested
                if stopping or self.state.step >= cfg.steps:
                    break
                if self._ready_to_train():
                    batch = training_batch(self.replay, self.demo_buffer, size, cfg.demo_fraction, cfg.utd_ratio)
                    _, self._info = self.agent.update(batch, utd_ratio=cfg.utd_ratio)
                    if self.agent.step % self.acfg.publish_every == 0:
                        self._publish()
                else:
                    self._new_data.wait(0.05)
                    self._new_data.clear()
            return self._finish(writer, start)
        finally:
            writer.close()
            if self._eval_env is not None:
                self._eval_env.close()

    def _finish(self, writer, start: float) -> dict[str, Any]:
        with self._lock:
            self._stop_requested = True  # refuse what still arrives; the count is final from here
            checkpoint = self._checkpoint_on_stop
        self._drain(writer)
        self.state.wall_time = time.perf_counter() - start
        self._publish()
        finished = self.state.step >= self.cfg.steps
        if finished and self.acfg.evaluate:
            self._evaluate(writer)
        folder = self.save_checkpoint() if finished or checkpoint else latest_checkpoint(self.checkpoint_dir)
        result = self._last_eval
        return {
            **self.status(),
            "status": "finished" if finished else ("paused" if checkpoint else "stopped"),
            "checkpoint": None if folder is None else str(folder),
            "wall_time": self.state.wall_time,
            "eval": None if result is None else dataclasses.asdict(result),
        }

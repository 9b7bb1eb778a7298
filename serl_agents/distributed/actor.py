"""An actor: steps its own env at the env's own rate with the latest policy it has, and never waits on the learner.

A real robot's env paces itself (it waits for the next control tick); a sim runs as fast as it can, or at its
control rate with `AsyncConfig.realtime` (what a person intervening through a device needs).

Transitions go to the learner in batches (`AsyncConfig.send_every`, and at every episode end); weights are pulled
every `pull_every` env steps, skipped when the replies to the batches since the last pull named no newer version.
Both calls go out without waiting; their replies are collected between env steps.
The only waits are bounded: registering at start, and when `max_in_flight` batches are still unanswered. A call
to a dead learner fails at once, one unanswered for `timeout_s` counts as a dead learner: the actor then holds
its robot (a real robot's server holds the pose; a sim simply is not stepped again) and raises
`LearnerLostError`. So an actor notices a lost learner within `pull_every` env steps plus `timeout_s`.

When the env reports `info["intervene_action"]` (an `InterventionWrapper`), the person's action is the one stored,
and the transition is marked so the learner also puts it in its demo buffer (HIL-SERL).

With HIL-SERL's learned gripper (`TrainConfig.grasp_critic` resolved on for this env, as in the synchronous loop) the
env is wrapped the same way (`with_learned_gripper`, outside the intervention wrapper), the acting agent is the grasp
agent (its grasp critic arrives with the policy weights) and every transition carries the step's `grasp_penalty`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from serl_agents.config import TrainConfig
from serl_agents.distributed.calls import LearnerLostError, first_line
from serl_agents.distributed.config import AsyncConfig
from serl_agents.distributed.weights import Weights, load_policy_weights
from serl_agents.replay.fields import GRASP_PENALTY
from serl_agents.train import (
    gripper_task,
    make_agent,
    make_env,
    make_transition,
    uses_grasp_critic,
    with_intervention,
    with_learned_gripper,
)

EnvFn = Callable[[], gym.Env]
POLL_INTERVAL_S = 0.01  # replies are collected at most this often: asking Ray about a pending call costs ~0.1 ms


def stack_transitions(transitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Transition dicts -> one dict of arrays with a leading axis (dict observations stay dicts)."""

    def stack(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {k: np.stack([v[k] for v in values]) for k in values[0]}
        return np.stack([np.asarray(v) for v in values])

    return {k: stack([t[k] for t in transitions]) for k in transitions[0]}


def hold_robot(env: gym.Env) -> None:
    """Make a real robot hold its pose now (its server's stop); a sim needs nothing, nobody steps it any more."""
    client = getattr(getattr(env.unwrapped, "robot", None), "client", None)
    stop = getattr(client, "stop", None)
    if callable(stop):
        stop()


class LearnerLink:
    """An actor's outstanding calls to the learner, collected without blocking and aged against `timeout_s`."""

    def __init__(self, learner, index: int, timeout_s: float, max_in_flight: int) -> None:
        import ray

        self.ray, self.learner, self.index = ray, learner, index
        self.timeout_s, self.max_in_flight = timeout_s, max_in_flight
        self._sends: deque[tuple[Any, float]] = deque()
        self._pull: tuple[Any, float] | None = None
        self._polled = 0.0
        self.pull_seconds = 0.0  # round trip of the last pull that brought weights (request to answer)

    def _result(self, ref: Any, what: str) -> Any:
        errors = self.ray.exceptions
        try:
            return self.ray.get(ref, timeout=0)
        except (errors.RayActorError, errors.GetTimeoutError) as err:
            raise LearnerLostError(f"actor {self.index}: the learner is gone ({what}: {first_line(err)}); "
                                   "stopped the robot and the actor") from err

    def _check_age(self, sent_at: float, what: str) -> None:
        if time.monotonic() - sent_at > self.timeout_s:
            raise LearnerLostError(f"actor {self.index}: the learner has not answered {what} for "
                                   f"{self.timeout_s:g} s; stopped the robot and the actor")

    def send(self, batch: dict[str, Any], intervened: np.ndarray, episodes: list[dict], version: int) -> list[dict]:
        """Send a batch; first wait (at most `timeout_s`) for the oldest if `max_in_flight` are unanswered."""
        replies = []
        if len(self._sends) >= self.max_in_flight:
            ref, sent_at = self._sends[0]
            self.ray.wait([ref], timeout=max(0.0, self.timeout_s - (time.monotonic() - sent_at)))
            replies = self.poll(now=True)[0]
        ref = self.learner.add_transitions.remote(self.index, batch, intervened, episodes, version)
        self._sends.append((ref, time.monotonic()))
        return replies

    def pull(self, have_version: int) -> None:
        if self._pull is None:
            self._pull = (self.learner.get_weights.remote(have_version), time.monotonic())

    def poll(self, now: bool = False) -> tuple[list[dict], Weights | None]:
        """Replies to sends that finished, in order, and the weights of a finished pull (None if none/unchanged).
        Looks at most every `POLL_INTERVAL_S` unless `now`."""
        replies: list[dict] = []
        if not now and time.monotonic() - self._polled < POLL_INTERVAL_S:
            return replies, None
        self._polled = time.monotonic()
        while self._sends:
            ref, sent_at = self._sends[0]
            if not self.ray.wait([ref], timeout=0)[0]:
                self._check_age(sent_at, "a batch of transitions")
                break
            replies.append(self._result(ref, "sending transitions"))
            self._sends.popleft()
        weights = None
        if self._pull is not None:
            ref, sent_at = self._pull
            if self.ray.wait([ref], timeout=0)[0]:
                weights = self._result(ref, "pulling weights")
                self.pull_seconds = time.monotonic() - sent_at
                self._pull = None
            else:
                self._check_age(sent_at, "a weights request")
        return replies, weights


class Actor:
    """One env and an acting copy of the agent (CPU, one torch thread).

    Args:
        cfg, acfg: the run's configs (env, agent, seed, intervention device; batching, pulls, timeouts).
        index: this actor's number (0..num_actors-1); with its start count it seeds the actor's episodes.
        env_fn: builds the env (default: `make_env(cfg.env, env_kwargs=cfg.env_kwargs)`), e.g. a real-robot env from a station file.
    """

    def __init__(self, cfg: TrainConfig, acfg: AsyncConfig, index: int, env_fn: EnvFn | None = None) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")
        torch.set_num_threads(1)
        self.cfg, self.acfg, self.index = cfg, acfg, index
        self.env = env_fn() if env_fn is not None else make_env(cfg.env, env_kwargs=cfg.env_kwargs)
        try:
            self.grasp_critic = uses_grasp_critic(cfg, self.env)  # HIL-SERL's learned gripper
        except ValueError:
            self.env.close()
            raise
        if cfg.intervention is not None:  # the device opens here, on the actor's machine
            self.env = with_intervention(self.env, cfg.intervention, cfg.intervention_fraction,
                                         cfg.intervention_episodes)
        if self.grasp_critic:
            self.env = with_learned_gripper(self.env, cfg.grasp_penalty)
        self.agent = make_agent(cfg, self.env.observation_space, self.env.action_space, torch.device("cpu"),
                                grasp_critic=self.grasp_critic)
        self.pacer = None
        if acfg.realtime:
            from serl_envs.record import Pacer

            self.pacer = Pacer(self.env.unwrapped.dt)
        self.version = -1
        self.steps = 0
        self.latencies: list[float] = []  # seconds from publication to loaded (pull period included), per update
        self.pull_round_trips: list[float] = []  # seconds from a pull request to its weights, per update
        self.versions: list[int] = []  # every version loaded, in order
        self._stop = threading.Event()

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.env.observation_space, self.env.action_space

    def learner_setup(self) -> dict[str, Any]:
        """The learner's constructor arguments that come from this actor's env (the learner never builds it): the
        spaces, whether the run has a grasp critic, and whether the gripper starts closed (for demo penalties)."""
        task = gripper_task(self.env) if self.grasp_critic else None
        return {"observation_space": self.env.observation_space, "action_space": self.env.action_space,
                "grasp_critic": self.grasp_critic,
                "initial_gripper_closed": task is not None and task.initial_gripper > 0.5}

    def stop(self) -> None:
        """End `run()` after the current env step (the launcher's Ctrl-C and pause)."""
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        return {"index": self.index, "agent": type(self.agent).__name__, "steps": self.steps, "version": self.version,
                "versions": list(self.versions),
                "latencies": list(self.latencies), "pull_round_trips": list(self.pull_round_trips),
                "cpu_s": time.process_time()}

    def _load(self, weights: Weights | None) -> None:
        if weights is None or weights.version == self.version:
            return
        load_policy_weights(self.agent, weights)
        self.version = weights.version
        self.versions.append(weights.version)
        self.latencies.append(time.time() - weights.published_at)

    def run(self, learner) -> dict[str, Any]:
        """Step the env until the learner says stop, `stop()` is called, or the learner is lost (raises)."""
        try:
            return self._loop(learner)
        except LearnerLostError:
            hold_robot(self.env)
            raise
        finally:
            self._stop.clear()

    def _loop(self, learner) -> dict[str, Any]:
        import ray

        cfg, acfg = self.cfg, self.acfg
        try:
            registration = ray.get(learner.register_actor.remote(self.index), timeout=acfg.timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as err:
            raise LearnerLostError(f"actor {self.index}: could not register with the learner within "
                                   f"{acfg.timeout_s:g} s ({first_line(err)})") from err
        self._load(registration["weights"])
        start, run_step = registration["start"], registration["step"]
        link = LearnerLink(learner, self.index, acfg.timeout_s, acfg.max_in_flight)
        rng = np.random.default_rng([cfg.seed, self.index, start])  # episode seeds, random actions
        policy_noise = torch.Generator().manual_seed(int(rng.integers(2**62)))  # no two actors explore alike
        obs, _ = self.env.reset(seed=int(rng.integers(2**31)))
        pending: list[dict[str, Any]] = []
        intervened: list[bool] = []
        episodes: list[dict[str, Any]] = []
        ep_return, ep_length, ep_interventions = 0.0, 0, 0
        since_pull, stop = 0, False
        newest, heard = self.version, False  # newest version a reply mentioned; any reply since the last pull?
        while not (stop or self._stop.is_set()):
            replies, weights = link.poll()
            if weights is not None:
                self.pull_round_trips.append(link.pull_seconds)
            self._load(weights)
            for reply in replies:
                run_step, stop = max(run_step, reply["step"]), stop or reply["stop"]
                newest, heard = max(newest, reply["version"]), True
            if stop:
                break
            if run_step < cfg.random_steps:  # the run's step count as of the last reply
                action = rng.uniform(-1, 1, self.env.action_space.shape).astype(np.float32)
            else:
                action = self.agent.sample_actions(obs, generator=policy_noise)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            if self.pacer is not None:
                self.pacer.wait()
            human = "intervene_action" in info
            stored = np.asarray(info["intervene_action"], dtype=np.float32) if human else action
            penalty = float(info.get(GRASP_PENALTY, 0.0)) if self.grasp_critic else None
            pending.append(make_transition(obs, stored, reward, terminated, truncated, next_obs, penalty))
            intervened.append(human)
            self.steps += 1
            since_pull += 1
            ep_return, ep_length, ep_interventions = ep_return + float(reward), ep_length + 1, ep_interventions + human
            obs = next_obs
            if terminated or truncated:
                episodes.append({"return": ep_return, "length": ep_length, "interventions": ep_interventions,
                                 "success": bool(info.get("is_success", False))})
                ep_return, ep_length, ep_interventions = 0.0, 0, 0
                obs, _ = self.env.reset(seed=int(rng.integers(2**31)))
            if len(pending) >= acfg.send_every or episodes:
                for reply in link.send(stack_transitions(pending), np.asarray(intervened), episodes, self.version):
                    run_step, stop = max(run_step, reply["step"]), stop or reply["stop"]
                    newest, heard = max(newest, reply["version"]), True
                pending, intervened, episodes = [], [], []
            # Pull on schedule, unless the replies since the last pull showed that there is nothing newer.
            if since_pull >= acfg.pull_every and (newest > self.version or not heard):
                link.pull(self.version)
                since_pull, heard = 0, False
        hold_robot(self.env)
        return {"index": self.index, "start": start, **self.stats()}

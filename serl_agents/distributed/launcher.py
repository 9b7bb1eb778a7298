"""`serl train --async`: start one learner and N actors as Ray actors, watch them, restart crashed actors, and
stop everything cleanly on completion, on Ctrl-C, on a pause request or when the learner dies.

Order of start: the actors first (each builds its env, so the env's spaces, and whether HIL-SERL's grasp critic
applies, come from the machine that has the robot), then the learner from actor 0's, then `run` on every one of
them. The launcher then waits on all `run` calls at once (never on one alone), asking the learner for its status
at most twice a second:
- an actor whose process died is restarted by Ray (`max_restarts`); the launcher calls `run` on it again, and it
  registers anew and starts from the learner's latest weights. An actor that raised is killed so that Ray
  restarts it with a fresh env. More than `max_actor_restarts` restarts of one actor stop the run.
- a lost learner (dead, or silent for `timeout_s`) stops the run: the actors notice it themselves and hold
  their robots; the launcher then kills what is left and raises `WorkerError`.
- Ctrl-C: actors stop, the learner stops without a new checkpoint, Ray shuts down; a second Ctrl-C kills at once.
- `serl pause RUN_DIR` or SIGTERM: the same, but the learner first writes a checkpoint; `--resume true` continues.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from serl_agents.config import TrainConfig
from serl_agents.distributed.calls import LearnerLostError, WorkerError, call, first_line, require_ray
from serl_agents.distributed.config import AsyncConfig, ray_options
from serl_agents.distributed.pause import (
    PAUSED,
    claim_run_dir,
    pause_requested,
    release_run_dir,
    resume_command,
    write_json_atomic,
)
from serl_agents.stop_signals import StopSignals

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often the launcher looks at the learner's status and the pause request
STOP_GRACE_S = 5.0  # how long a failing run waits for its actors to stop (and hold their robots) before killing them
LEARNER_CONCURRENCY = 4  # the learner's threads: `run` plus three answering actors and the launcher
ACTOR_CONCURRENCY = 2  # an actor's threads: `run` plus `stop`/`stats`


@dataclass(frozen=True)
class RunSummary:
    """How an asynchronous run ended."""

    status: str  # finished | paused | stopped (Ctrl-C)
    step: int  # transitions stored = env steps of the run
    updates: int  # learner updates (each `utd_ratio` gradient steps), also the last weights version
    checkpoint: str | None  # the newest checkpoint folder
    restarts: dict[int, int]  # actor index -> restarts during this session
    learner: dict[str, Any]  # the learner's final status (per-actor counts, buffer sizes, eval)
    actors: dict[int, dict[str, Any]]  # actor index -> what its last `run` returned (steps, versions, latencies)
    resume: str  # the command that continues the run
    start: dict[str, Any]  # the learner's status when this session began (non-zero step/buffer/updates: resumed)


class AsyncRun:
    """One asynchronous run on an already connected Ray: workers, monitoring, restarts and shutdown."""

    def __init__(self, cfg: TrainConfig, acfg: AsyncConfig, env_fn=None) -> None:
        import ray

        from serl_agents.distributed.actor import Actor
        from serl_agents.distributed.learner import Learner

        self.ray, self.cfg, self.acfg = ray, cfg, acfg
        self.run_id = uuid.uuid4().hex[:8]
        self.restarts = dict.fromkeys(range(acfg.num_actors), 0)
        self.results: dict[int, dict[str, Any]] = {}
        self.stop_reason: str | None = None  # "pause" or "interrupt" once asked to stop
        self.learner_cls = ray.remote(max_concurrency=LEARNER_CONCURRENCY)(Learner)
        self.learner = None
        self.actor_refs: dict[Any, int] = {}  # pending `run` call -> actor index
        actor_cls = ray.remote(max_concurrency=ACTOR_CONCURRENCY)(Actor)
        self.actors = [
            actor_cls.options(name=f"serl-actor-{i}-{self.run_id}", max_restarts=acfg.max_actor_restarts,
                              max_task_retries=0, **ray_options(acfg.actor_resources)).remote(cfg, acfg, i, env_fn)
            for i in range(acfg.num_actors)
        ]

    def start(self) -> None:
        """Wait (bounded) for the actors' envs, then start the learner from actor 0's spaces (and grasp critic)."""
        acfg = self.acfg
        setup = self._started(self.actors[0].learner_setup.remote(), "actor 0", acfg.actor_resources)
        self.learner = self.learner_cls.options(name=f"serl-learner-{self.run_id}", max_restarts=0,
                                                **ray_options(acfg.learner_resources)).remote(self.cfg, acfg, **setup)
        self.status = self._started(self.learner.status.remote(), "the learner", acfg.learner_resources)
        self.start_status = self.status
        if self.status["resumed"]:
            print(f"resumed from step {self.status['step']} ({self.status['buffer']} transitions in the buffer, "
                  f"{self.status['updates']} updates)")
        for i, actor in enumerate(self.actors[1:], start=1):
            self._started(actor.spaces.remote(), f"actor {i}", acfg.actor_resources)

    def _started(self, ref, who: str, resources: dict[str, float]) -> Any:
        """Wait for a worker's first answer (at most `startup_timeout_s`); Ctrl-C or a pause meanwhile ends the run."""
        deadline = time.monotonic() + self.acfg.startup_timeout_s
        while not self.ray.wait([ref], timeout=POLL_S)[0]:
            if self.stop_reason is not None:
                raise KeyboardInterrupt(f"stopped while starting {who}")
            if time.monotonic() > deadline:
                available = self.ray.available_resources()
                raise WorkerError(f"starting {who}: no answer within {self.acfg.startup_timeout_s:g} s; it asked for "
                                  f"resources {resources}, the cluster has {available} free "
                                  "(see --actor-resources / --learner-resources)")
        return call(ref, self.acfg.timeout_s, f"starting {who}")

    # --- running ----------------------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        learner_ref = self.learner.run.remote()
        self.actor_refs = {actor.run.remote(self.learner): i for i, actor in enumerate(self.actors)}
        bar = tqdm(total=self.cfg.steps, initial=self.status["step"], desc=f"async {self.cfg.agent} {self.cfg.env}",
                   unit="step", disable=os.environ.get("SERL_NO_PROGRESS") == "1")
        last_status = time.monotonic()
        try:
            while True:
                ready, _ = self.ray.wait([learner_ref, *self.actor_refs], num_returns=1, timeout=POLL_S)
                if learner_ref in ready:
                    final = self._learner_call(learner_ref, "the learner's run")
                    break
                for ref in ready:
                    self._actor_ended(ref)
                if self.stop_reason is None and pause_requested(Path(self.cfg.out)):
                    self.stop_reason = "pause"
                if self.stop_reason is not None:
                    final = self._stop(learner_ref, checkpoint=self.stop_reason == "pause")
                    break
                if time.monotonic() - last_status >= POLL_S:
                    self.status = self._learner_call(self.learner.status.remote(), "asking the learner for its status")
                    last_status = time.monotonic()
                    bar.update(self.status["step"] - bar.n)
                    bar.set_postfix(updates=self.status["updates"], buffer=self.status["buffer"])
            bar.update(final["step"] - bar.n)
        finally:
            bar.close()
        self._collect_actors()
        return RunSummary(status=final["status"], step=final["step"], updates=final["updates"],
                          checkpoint=final["checkpoint"], restarts=dict(self.restarts), learner=final,
                          actors=dict(self.results), resume=resume_command(self.cfg, self.acfg),
                          start=self.start_status)

    def _learner_call(self, ref, what: str, timeout_s: float | None = None) -> Any:
        """A bounded wait on the learner; a dead or silent learner ends the run with the command to resume it."""
        try:
            return call(ref, self.acfg.timeout_s if timeout_s is None else timeout_s, what)
        except WorkerError as err:
            raise WorkerError(f"the learner is lost ({err}); the actors hold their robots and stop. Resume from the "
                              f"last checkpoint with: {resume_command(self.cfg, self.acfg)}") from err

    def _actor_ended(self, ref) -> None:
        """An actor's `run` returned or failed: keep its result, or restart it (bounded), or give up."""
        ray, i = self.ray, self.actor_refs.pop(ref)
        try:
            self.results[i] = ray.get(ref)
            return
        except LearnerLostError as err:
            raise WorkerError(f"actor {i} lost the learner: {first_line(err)}") from err
        except ray.exceptions.RayActorError as err:
            reason = f"its process died ({first_line(err)})"
        except ray.exceptions.RayTaskError as err:
            reason = f"it raised {first_line(err)}"
            ray.kill(self.actors[i], no_restart=False)  # a fresh process, a fresh env
        self.restarts[i] += 1
        if self.restarts[i] > self.acfg.max_actor_restarts:
            raise WorkerError(f"actor {i} failed {self.restarts[i]} times (max_actor_restarts "
                              f"{self.acfg.max_actor_restarts}); last: {reason}")
        log.warning("actor %d stopped: %s; restarting it (%d of %d)", i, reason, self.restarts[i],
                    self.acfg.max_actor_restarts)
        self._await_restart(i)
        self.actor_refs[self.actors[i].run.remote(self.learner)] = i

    def _await_restart(self, i: int) -> None:
        """Wait (at most `startup_timeout_s`) until Ray has restarted actor `i`: calls fail while it restarts."""
        deadline = time.monotonic() + self.acfg.startup_timeout_s
        while True:
            try:
                call(self.actors[i].spaces.remote(), max(deadline - time.monotonic(), 0.1), f"restarting actor {i}")
                return
            except WorkerError as err:
                restarting = isinstance(err.__cause__, self.ray.exceptions.ActorUnavailableError)
                if not restarting or time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)

    def _stop(self, learner_ref, checkpoint: bool) -> dict[str, Any]:
        """Stop actors and learner; the learner checkpoints first when pausing."""
        self.learner.request_stop.remote(checkpoint)
        for actor in self.actors:
            actor.stop.remote()
        if checkpoint:
            return self._learner_call(learner_ref, "the learner writing its checkpoint", self.acfg.checkpoint_timeout_s)
        return self._learner_call(learner_ref, "the learner stopping")

    def _collect_actors(self) -> None:
        """Actors stop by themselves once the learner refuses data; wait (bounded) for their summaries."""
        for actor in self.actors:
            actor.stop.remote()
        for ref, i in list(self.actor_refs.items()):
            try:
                self.results[i] = call(ref, self.acfg.timeout_s, f"actor {i} stopping")
            except (WorkerError, LearnerLostError) as err:
                log.warning("actor %d did not stop cleanly: %s", i, first_line(err))
            del self.actor_refs[ref]

    def shutdown(self) -> None:
        """Ask running actors to stop (their robots hold), give them `STOP_GRACE_S`, then end every worker."""
        for actor in self.actors:
            actor.stop.remote()
        if self.actor_refs:
            self.ray.wait(list(self.actor_refs), num_returns=len(self.actor_refs), timeout=STOP_GRACE_S)
        for handle in [*self.actors, self.learner]:
            if handle is not None:
                self.ray.kill(handle, no_restart=True)


def describe_async_stop(reason: str) -> str:
    return "stopping: actors hold, learner " + ("checkpoints" if reason == "pause" else "stops")


def connect(acfg: AsyncConfig) -> bool:
    """Connect to Ray: the given cluster, the one already initialised, or a new local one. True if we started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if acfg.ray_address is not None:
        ray.init(address=acfg.ray_address)
        return False
    need = 1 + acfg.num_actors  # default resources: one logical CPU per worker (not a pinned core)
    ray.init(num_cpus=max(os.cpu_count() or 1, need), include_dashboard=False)
    return True


def run_async(cfg: TrainConfig, acfg: AsyncConfig, env_fn=None) -> RunSummary:
    """Run `cfg` with one learner and `acfg.num_actors` actors on Ray; see the module docstring.

    `env_fn()` builds each actor's env (default `make_env(cfg.env, env_kwargs=cfg.env_kwargs)`); it is pickled to the actor processes.
    """
    if cfg.device == "cuda" and not acfg.learner_resources.get("num_gpus"):
        raise ValueError("--device cuda needs a GPU for the learner: add --learner-resources '{\"num_gpus\": 1}' "
                         "(Ray hides GPUs from workers that do not ask for one)")
    if cfg.agent == "bc":
        raise ValueError("agent 'bc' learns offline from demonstrations; --async runs the online agents (sac, drq)")
    if cfg.reward != "env":
        raise ValueError(f"--reward {cfg.reward} is not available with --async yet (the learner trains on the env's "
                         "reward); train it synchronously (without --async)")
    require_ray()
    out = Path(cfg.out).resolve()
    cfg = dataclasses.replace(cfg, out=out, demos=None if cfg.demos is None else Path(cfg.demos).resolve())
    claim_run_dir(out)
    started, run = False, None
    try:
        (out / "config.json").write_text(cfg.to_json())
        (out / "async.json").write_text(acfg.to_json())
        started = connect(acfg)
        run = AsyncRun(cfg, acfg, env_fn)
        with StopSignals(run, describe_async_stop):
            run.start()
            summary = run.run()
        if summary.status == "paused":
            write_json_atomic(out / PAUSED, {"step": summary.step, "checkpoint": summary.checkpoint,
                                             "resume": summary.resume})
        return summary
    finally:
        if run is not None:
            run.shutdown()
        if started:
            import ray

            ray.shutdown()
        release_run_dir(out)


def main_train_async(cfg: TrainConfig, acfg: AsyncConfig) -> int:
    """`serl train --async`: run, then say how it ended and how to continue."""
    try:
        require_ray()
    except ImportError as err:
        print(f"serl train: {err}", file=sys.stderr)
        return 2
    try:
        summary = run_async(cfg, acfg)
    except KeyboardInterrupt:
        print("serl train: interrupted; every worker was stopped", file=sys.stderr)
        return 130
    except ValueError as err:
        print(f"serl train: {err}", file=sys.stderr)
        return 2
    except WorkerError as err:
        print(f"serl train: {err}", file=sys.stderr)
        return 1
    evaluation = summary.learner.get("eval")
    if summary.status == "finished" and evaluation is not None:
        print(f"final eval: success {evaluation['success_rate']:.0%} over {evaluation['episodes']} episodes, "
              f"return {evaluation['mean_return']:.2f}; run in {cfg.out}")
    print(f"{summary.status} at step {summary.step} after {summary.updates} updates; checkpoint {summary.checkpoint}")
    if summary.status != "finished":
        print(f"resume with:\n  {summary.resume}")
    return 0

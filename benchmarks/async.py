"""Asynchronous actor/learner on a local Ray, against the same work done in one process.

1. Actor throughput: env steps/s of an actor (policy acting, batches sent, weights pulled) while the learner
   trains at a high UTD, against the same env and policy stepped alone in this process (before and after the
   async run, so a drift of the shared machine shows). Target: >= 90%.
2. Weight broadcast latency: seconds from the learner publishing a version to an actor acting with it (pull
   period included), p50 / p99.
3. Wall time to N learner updates: `serl train` (synchronous: one update per env step) against `--async`
   (counted from the moment every worker is up; the workers' start-up time is reported beside it).
4. Stop times: Ctrl-C (no checkpoint) and pause (checkpoint of agent and buffers) until every worker has ended.

    python -m benchmarks.async                    # SERL's state recipe (utd 8, 10 critics), ~6 min on 2 cores
    python -m benchmarks.async --critics 2        # HIL-SERL's two critics: cheaper updates

Each part runs twice: with the sim stepped as fast as it goes (the actor then competes with the learner for the
CPU cores), and paced to its control rate (`--realtime`, 20 Hz: what a robot does, and what makes the actor's
share of a core small).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from serl_agents.config import apply_preset
from serl_agents.distributed.config import AsyncConfig
from serl_agents.train import Trainer, make_agent, make_env
from serl_envs.record import Pacer


def steps_alone(cfg, seconds: float, realtime: bool = False) -> tuple[float, float]:
    """Env steps/s and CPU seconds per step of the env and the policy in this process (one torch thread, as an
    actor has), optionally paced to the env's control rate."""
    env = make_env(cfg.env, env_kwargs=cfg.env_kwargs)
    env = Paced(env) if realtime else env
    agent = make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu"))
    obs, _ = env.reset(seed=0)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        obs, _, terminated, truncated, _ = env.step(agent.sample_actions(obs))
        steps += 1
        if terminated or truncated:
            obs, _ = env.reset()
    rate, cpu_per_step = steps / (time.perf_counter() - start), (time.process_time() - cpu) / steps
    env.close()
    return rate, cpu_per_step


def wait_until(predicate, timeout_s: float, poll_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"condition not met within {timeout_s} s")


def async_run(cfg, acfg, updates: int, window: float) -> dict:
    """Start a run, time it to `updates` updates, then measure the actors during `window` seconds of training,
    then Ctrl-C-stop it."""
    import ray

    from serl_agents.distributed.launcher import AsyncRun

    t0 = time.perf_counter()
    run = AsyncRun(cfg, acfg)
    run.start()
    started = time.perf_counter()
    learner_ref = run.learner.run.remote()
    actor_refs = [actor.run.remote(run.learner) for actor in run.actors]

    def status():
        return ray.get(run.learner.status.remote(), timeout=60)

    reached = wait_until(lambda: status()["updates"] >= updates and time.perf_counter(), 3600, poll_s=0.02)
    before = [ray.get(a.stats.remote(), timeout=60) for a in run.actors]
    u0, w0 = status()["updates"], time.perf_counter()
    time.sleep(window)
    after = [ray.get(a.stats.remote(), timeout=60) for a in run.actors]
    u1, w1 = status()["updates"], time.perf_counter()
    stats = [ray.get(a.stats.remote(), timeout=60) for a in run.actors]
    latencies = [x for a in stats for x in a["latencies"][1:]]  # the first came with registration
    round_trips = [x for a in stats for x in a["pull_round_trips"]]
    stop_start = time.perf_counter()
    run.learner.request_stop.remote(False)
    for actor in run.actors:
        actor.stop.remote()
    ray.get([learner_ref, *actor_refs], timeout=120)
    stopped = time.perf_counter() - stop_start
    run.shutdown()
    return {
        "startup_s": started - t0,
        "actor_steps_per_s": [(b["steps"] - a["steps"]) / (w1 - w0) for a, b in zip(before, after, strict=True)],
        "actor_cpu_per_step": [(b["cpu_s"] - a["cpu_s"]) / max(b["steps"] - a["steps"], 1)
                               for a, b in zip(before, after, strict=True)],
        "learner_updates_per_s": (u1 - u0) / (w1 - w0),
        "time_to_updates_s": reached - started,
        "latencies": latencies,
        "round_trips": round_trips,
        "stop_s": stopped,
    }


def pause_time(cfg, acfg) -> float:
    """Seconds from a pause request (checkpoint) to every worker ended, with the buffer `cfg.steps` // 2 full."""
    import ray

    from serl_agents.distributed.launcher import AsyncRun

    run = AsyncRun(cfg, acfg)
    run.start()
    learner_ref = run.learner.run.remote()
    actor_refs = [actor.run.remote(run.learner) for actor in run.actors]
    wait_until(lambda: ray.get(run.learner.status.remote(), timeout=60)["accepted"] >= cfg.steps // 2, 600)
    start = time.perf_counter()
    run.learner.request_stop.remote(True)
    for actor in run.actors:
        actor.stop.remote()
    ray.get([learner_ref, *actor_refs], timeout=600)
    elapsed = time.perf_counter() - start
    run.shutdown()
    return elapsed


class Paced(gym.Wrapper):
    """The env stepped at its control rate, as a robot runs (what `--realtime` does in an actor)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.pacer = Pacer(env.unwrapped.dt)

    def step(self, action):
        out = self.env.step(action)
        self.pacer.wait()
        return out


def sync_time_to_updates(cfg, updates: int, realtime: bool) -> float:
    """Wall time of the synchronous loop for `updates` updates (construction excluded)."""
    trainer = Trainer(dataclasses.replace(cfg, steps=cfg.training_starts + updates))
    if realtime:
        trainer.env = Paced(trainer.env)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def rows(title: str, alone: list[tuple[float, float]], result: dict, sync: float, updates: int, utd: int) -> None:
    rate_alone = statistics.mean(a[0] for a in alone)
    cpu_alone = statistics.mean(a[1] for a in alone)
    lat = np.asarray(result["latencies"])
    print(f"| **{title}** | |")
    print(f"| env + policy alone, steps/s (before / after) | {' / '.join(f'{a[0]:.0f}' for a in alone)} |")
    for i, (rate, cpu) in enumerate(zip(result["actor_steps_per_s"], result["actor_cpu_per_step"], strict=True)):
        print(f"| actor {i} while the learner trains, steps/s | {rate:.1f} ({rate / rate_alone:.0%} of alone) |")
        print(f"| actor {i} CPU per env step, async / alone | {cpu * 1e3:.2f} ms / {cpu_alone * 1e3:.2f} ms |")
    print(f"| learner updates/s meanwhile (utd {utd}) | {result['learner_updates_per_s']:.2f} |")
    trips = np.asarray(result["round_trips"])
    if lat.size and trips.size:
        print(f"| weights: publication to acting with them, p50 / p99 (pull period included) | "
              f"{np.percentile(lat, 50) * 1e3:.0f} ms / {np.percentile(lat, 99) * 1e3:.0f} ms ({lat.size} versions) |")
        print(f"| weights: pull request to loaded, p50 / p99 | {np.percentile(trips, 50) * 1e3:.1f} ms / "
              f"{np.percentile(trips, 99) * 1e3:.1f} ms |")
    print(f"| wall time to {updates} updates: sync / async | {sync:.1f} s / {result['time_to_updates_s']:.1f} s "
          f"(async {sync / result['time_to_updates_s']:.2f}x faster) |")
    print(f"| async start-up (Ray workers, imports, envs; not in the time above) | {result['startup_s']:.1f} s |")
    print(f"| Ctrl-C: stop until every worker ended | {result['stop_s']:.2f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="SerlFrankaPickCube-v0")
    parser.add_argument("--preset", default="serl-sac-state")
    parser.add_argument("--critics", type=int, default=None, help="critic ensemble size (HIL-SERL: 2, no subsample)")
    parser.add_argument("--updates", type=int, default=50, help="N for the wall time to N updates")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of actor throughput measured")
    parser.add_argument("--num-actors", type=int, default=1)
    parser.add_argument("--publish-every", type=int, default=2,
                        help="learner updates between weight publications (2: many versions for the latency figures; "
                             "serl train's default is 10)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["SERL_NO_PROGRESS"] = "1"
    out = Path(tempfile.mkdtemp(prefix="serl_async_bench_"))
    agent_kwargs = {} if args.critics is None else {
        "critic_ensemble_size": args.critics, "critic_subsample_size": None if args.critics <= 2 else 2}
    cfg = apply_preset(args.preset, {
        "env": args.env, "out": out / "async", "steps": 10_000_000, "random_steps": 300, "training_starts": 300,
        "eval_every": 10_000_000, "eval_episodes": 1, "checkpoint_every": 10_000_000, "video": False,
        "device": "cpu", "torch_threads": 1, "replay_capacity": 200_000, "agent_kwargs": agent_kwargs, "expert_demos": 0,
    })
    acfg = AsyncConfig(num_actors=args.num_actors, publish_every=args.publish_every)
    paced = dataclasses.replace(acfg, realtime=True)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"{cfg.env}, preset {args.preset} (utd {cfg.utd_ratio}, batch {cfg.batch_size}, critics "
          f"{cfg.agent_kwargs['critic_ensemble_size']}), {args.num_actors} actor(s), weights published every "
          f"{acfg.publish_every} updates, pulled every {acfg.pull_every} env steps")

    import ray

    ray.init(num_cpus=max(os.cpu_count() or 1, 1 + args.num_actors), include_dashboard=False, log_to_driver=False)
    try:
        fast_alone = [steps_alone(cfg, args.window / 2)]
        fast = async_run(cfg, acfg, args.updates, args.window)
        fast_alone.append(steps_alone(cfg, args.window / 2))
        load = os.getloadavg()[0]
        robot_alone = [steps_alone(cfg, args.window / 2, realtime=True)]
        robot = async_run(dataclasses.replace(cfg, out=out / "paced"), paced, args.updates, args.window)
        paused = pause_time(dataclasses.replace(cfg, out=out / "pause", steps=20_000), acfg)
    finally:
        ray.shutdown()
    fast_sync = sync_time_to_updates(dataclasses.replace(cfg, out=out / "sync"), args.updates, realtime=False)
    robot_sync = sync_time_to_updates(dataclasses.replace(cfg, out=out / "sync_paced"), args.updates, realtime=True)

    print(f"load average (1 min) after the unpaced run: {load:.1f} on {os.cpu_count()} CPUs")
    print("\n| measurement | value |\n|---|---|")
    rows("sim as fast as it steps", fast_alone, fast, fast_sync, args.updates, cfg.utd_ratio)
    rows("sim at its control rate (--realtime, as a robot)", robot_alone, robot, robot_sync, args.updates,
         cfg.utd_ratio)
    print(f"| pause: checkpoint of 10k transitions + agent, until every worker ended | {paused:.2f} s |")


if __name__ == "__main__":
    main()

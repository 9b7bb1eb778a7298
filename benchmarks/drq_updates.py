"""What one env step of DrQ learning costs on a CPU: the `serl-drq` preset against `drq-cpu`, step by step.

Each row builds the agent exactly as `serl train` does (`make_agent` on the env's real observation space, from the
preset's TrainConfig) and times `agent.update(batch, utd_ratio)` on a batch of `batch_size x utd_ratio` random
transitions, i.e. the learner's work per env step. Rows are timed in interleaved rounds (median reported) against
`serl-drq` in the same process, so the ratios hold on a shared, noisy machine. The rows in between change one
thing of serl-drq at a time, in the order drq-cpu changes them, to show where the factor comes from:

    serl-drq: 128x128 cameras, "small" encoder 32/64/128/256, fp32, 10 critics, batch 256, UTD 4
    -> 64x64 cameras -> encoder 16/32/64/128 -> bf16 autocast -> drq-cpu (2 critics, batch 128, UTD 2)

    python -m benchmarks.drq_updates                  # ~5 min on one core; --rounds 3 for a quicker look
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.agent_updates import measure
from serl_agents.config import TrainConfig, apply_preset

ENV = "SerlFrankaPickCubeVision-v0"


def random_batch(space, action_dim: int, size: int, rng: np.random.Generator) -> dict[str, Any]:
    """`size` random transitions of an env's dict observation space, as the replay buffer hands them over."""

    def observations() -> dict[str, torch.Tensor]:
        obs = {}
        for key, sub in space.spaces.items():
            if sub.dtype == np.uint8:
                obs[key] = torch.from_numpy(rng.integers(0, 256, (size, *sub.shape), dtype=np.uint8))
            else:
                obs[key] = torch.from_numpy(rng.standard_normal((size, *sub.shape)).astype(np.float32))
        return obs

    return {
        "observations": observations(),
        "next_observations": observations(),
        "actions": torch.from_numpy(rng.uniform(-1, 1, (size, action_dim)).astype(np.float32)),
        "rewards": torch.from_numpy(rng.standard_normal(size).astype(np.float32)),
        "masks": torch.ones(size),
    }


def env_step_runner(cfg: TrainConfig) -> Callable[[int], None]:
    """Runs `n` env steps' worth of learner updates of `cfg`'s agent (one `update(batch, utd_ratio)` each)."""
    from serl_agents.train import make_agent, make_env

    env = make_env(cfg.env, env_kwargs=cfg.env_kwargs)
    agent = make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu"))
    batch = random_batch(env.observation_space, env.action_space.shape[0], cfg.batch_size * cfg.utd_ratio,
                         np.random.default_rng(0))
    env.close()

    def run(steps: int) -> None:
        for _ in range(steps):
            agent.update(batch, utd_ratio=cfg.utd_ratio)

    run.agent = agent  # type: ignore[attr-defined]  (for tests)
    return run


def configs() -> dict[str, TrainConfig]:
    """serl-drq, then drq-cpu's changes applied one at a time, then drq-cpu itself."""
    serl = {"env": ENV}
    small = {"env_kwargs": {"image_size": [64, 64]}}
    narrow = {"agent_kwargs": {"encoder_kwargs": {"features": [16, 32, 64, 128]}}}
    bf16 = {"agent_kwargs": {"encoder_kwargs": {"features": [16, 32, 64, 128]}, "amp": True}}
    return {
        "serl-drq (128x128, encoder 32-256, fp32, 10 critics, batch 256, UTD 4)": apply_preset("serl-drq", serl),
        "+ 64x64 cameras": apply_preset("serl-drq", {**serl, **small}),
        "+ encoder 16/32/64/128": apply_preset("serl-drq", {**serl, **small, **narrow}),
        "+ bf16 autocast": apply_preset("serl-drq", {**serl, **small, **bf16}),
        "drq-cpu (+ 2 critics, batch 128, UTD 2)": apply_preset("drq-cpu", serl),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median reported)")
    parser.add_argument("--steps", type=int, default=1, help="env steps' worth of updates per round and row")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"process CPU clock, load average {os.getloadavg()[0]:.1f}", flush=True)
    cfgs = configs()
    runners = {name: env_step_runner(cfg) for name, cfg in cfgs.items()}
    start = time.perf_counter()
    rates = measure(runners, args.steps, args.rounds, clock="cpu")
    reference = next(iter(rates))
    print("| learner per env step | updates (batch) | seconds | speed-up vs serl-drq |")
    print("|---|---|---:|---:|")
    for name, rate in rates.items():
        cfg = cfgs[name]
        print(f"| {name} | {cfg.utd_ratio} x {cfg.batch_size} | {1 / rate:.3f} | {rate / rates[reference]:.1f}x |")
    print(f"\nmeasured in {time.perf_counter() - start:.0f} s; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Gradient updates per second of `SACAgent.update`, against references run in the same process.

1. Two critics, equal architecture ([256, 256] ReLU, no LayerNorm: stable-baselines3's SAC default):
   ours vs `stable_baselines3.SAC.train(gradient_steps=N, batch_size=256)`.
2. SERL's recipe (10 critics, target = min of 2 random ones, [256, 256] tanh + LayerNorm):
   ours (one batched ensemble) vs `LoopSAC` below, the same algorithm with a Python loop over critics.

Every gradient step samples its batch from a replay buffer of random data (SB3: its own ReplayBuffer;
ours and the loop: uniform indices into tensors), so sampling is part of each measurement. Runners
are timed in interleaved rounds and the median rate is reported, which keeps the ratios meaningful on
a machine shared with other jobs.

    python -m benchmarks.agent_updates                # ~2 min on 2 CPU cores
    python -m benchmarks.agent_updates --compile --amp  # adds torch.compile and bf16-autocast rows
    python -m benchmarks.agent_updates --threads 1 --clock cpu  # by CPU time, for a busy shared machine
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from serl_agents import SACAgent

OBS_DIM, ACT_DIM, BUFFER = 20, 4, 10_000


class TensorBuffer:
    """Random transitions in tensors; `sample` draws a uniform batch like a replay buffer would."""

    def __init__(self, batch_size: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.data = {
            "observations": torch.randn(BUFFER, OBS_DIM, generator=g),
            "actions": torch.rand(BUFFER, ACT_DIM, generator=g) * 2 - 1,
            "rewards": torch.randn(BUFFER, generator=g),
            "masks": (torch.rand(BUFFER, generator=g) > 0.01).float(),
            "next_observations": torch.randn(BUFFER, OBS_DIM, generator=g),
        }
        self.batch_size = batch_size
        self.generator = g

    def sample(self) -> dict[str, torch.Tensor]:
        index = torch.randint(BUFFER, (self.batch_size,), generator=self.generator)
        return {key: value[index] for key, value in self.data.items()}


def mlp(
    in_dim: int, out_dim: int, hidden: list[int], layer_norm: bool, activation: type[nn.Module]
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), *([nn.LayerNorm(width)] if layer_norm else []), activation()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class LoopSAC:
    """The reference: SERL's SAC recipe written the usual way, one `nn.Module` per critic in a Python loop.

    Same losses, ensemble/subsample sizes, fused Adam and foreach Polyak update as `SACAgent`; critics
    are frozen during the policy step (SpinningUp's trick) so neither side computes unneeded weight
    gradients. The only difference measured is loop-over-critics vs one batched ensemble.
    """

    def __init__(self, num_critics: int, subsample: int, hidden: list[int], seed: int = 0):
        torch.manual_seed(seed)
        self.critics = nn.ModuleList(
            mlp(OBS_DIM + ACT_DIM, 1, hidden, True, nn.Tanh) for _ in range(num_critics)
        )
        self.targets = nn.ModuleList(
            mlp(OBS_DIM + ACT_DIM, 1, hidden, True, nn.Tanh) for _ in range(num_critics)
        )
        self.targets.load_state_dict(self.critics.state_dict())
        self.targets.requires_grad_(False)
        self.actor = mlp(OBS_DIM, 2 * ACT_DIM, hidden, True, nn.Tanh)
        self.log_alpha = nn.Parameter(torch.tensor(np.log(1e-2), dtype=torch.float32))
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=3e-4, fused=True)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=3e-4, fused=True)
        self.subsample = subsample
        self.target_entropy = -ACT_DIM / 2
        self.online_params = list(self.critics.parameters())
        self.target_params = list(self.targets.parameters())

    def policy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs).chunk(2, dim=-1)
        std = log_std.exp().clamp(1e-5, 5.0)
        noise = torch.randn_like(mean)
        pre_tanh = mean + std * noise
        log_prob = (-0.5 * noise.square() - std.log() - 0.5 * np.log(2 * np.pi)).sum(-1)
        log_prob = log_prob - (2 * (np.log(2) - pre_tanh - nn.functional.softplus(-2 * pre_tanh))).sum(-1)
        return torch.tanh(pre_tanh), log_prob

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        obs, actions, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_actions, _ = self.policy(next_obs)
            next_input = torch.cat([next_obs, next_actions], dim=-1)
            chosen = torch.randperm(len(self.targets))[: self.subsample].tolist()
            target_q = torch.stack([self.targets[i](next_input).squeeze(-1) for i in chosen]).min(0).values
            target = batch["rewards"] + 0.99 * batch["masks"] * target_q
        sa = torch.cat([obs, actions], dim=-1)
        critic_loss = torch.stack([(c(sa).squeeze(-1) - target).square().mean() for c in self.critics]).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.critics.requires_grad_(False)
        pi_actions, log_probs = self.policy(obs)
        pi_input = torch.cat([obs, pi_actions], dim=-1)
        q = torch.stack([c(pi_input).squeeze(-1) for c in self.critics]).mean(0)
        actor_loss = (alpha * log_probs - q).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critics.requires_grad_(True)

        alpha_loss = self.log_alpha.exp() * (-log_probs.detach().mean() - self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.target_params, self.online_params, 0.005)


def ours(batch_size: int, **config) -> Callable[[int], None]:
    agent = SACAgent.create_states(torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM), seed=0, **config)
    buffer = TensorBuffer(batch_size)

    def run(steps: int) -> None:
        for _ in range(steps):
            agent.update(buffer.sample())

    return run


def loop_reference(batch_size: int, num_critics: int, subsample: int) -> Callable[[int], None]:
    model = LoopSAC(num_critics, subsample, [256, 256])
    buffer = TensorBuffer(batch_size)

    def run(steps: int) -> None:
        for _ in range(steps):
            model.update(buffer.sample())

    return run


def sb3_reference(batch_size: int) -> Callable[[int], None]:
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    class RandomEnv(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    model = SAC(
        "MlpPolicy",
        RandomEnv(),
        policy_kwargs={"net_arch": [256, 256]},
        batch_size=batch_size,
        buffer_size=BUFFER,
        learning_starts=0,
        device="cpu",
        seed=0,
    )
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    for _ in range(BUFFER):
        model.replay_buffer.add(
            rng.standard_normal((1, OBS_DIM), np.float32),
            rng.standard_normal((1, OBS_DIM), np.float32),
            rng.uniform(-1, 1, (1, ACT_DIM)).astype(np.float32),
            rng.standard_normal(1),
            np.zeros(1),
            [{}],
        )

    def run(steps: int) -> None:
        model.train(gradient_steps=steps, batch_size=batch_size)

    return run


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def measure(
    runners: dict[str, Callable[[int], None]], updates: int, rounds: int, clock: str = "wall"
) -> dict[str, float]:
    """Median updates/s per runner over `rounds` interleaved rounds (after a warm-up round).

    `clock="cpu"` times by this process's CPU time instead of wall time: with one thread, time spent
    descheduled by other jobs on a shared machine then does not count (cache and memory-bandwidth
    contention still does). With several threads it would add up the threads' (spinning) time."""
    now = CLOCKS[clock]
    for run in runners.values():
        run(max(3, updates // 10))
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = now()
            run(updates)
            rates[name].append(updates / (now() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def options(args: argparse.Namespace, config: dict) -> dict[str, Callable[[int], None]]:
    """Extra rows for the speed options asked for on the command line."""
    runners = {}
    if args.compile:
        runners["SACAgent.update (compile=True)"] = ours(args.batch_size, compile=True, **config)
    if args.amp:
        runners["SACAgent.update (amp=True, bf16)"] = ours(args.batch_size, amp=True, **config)
    return runners


def table(title: str, rates: dict[str, float], reference: str) -> str:
    lines = [f"**{title}**", "", "| runner | updates/s | ratio vs reference |", "|---|---:|---:|"]
    for name, rate in rates.items():
        lines.append(f"| {name} | {rate:.1f} | {rate / rates[reference]:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=100, help="gradient updates per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median reported)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="time rounds by wall time or by process CPU time (cpu: use with --threads 1 on a shared machine)",
    )
    parser.add_argument("--compile", action="store_true", help="also time SACAgent(compile=True)")
    parser.add_argument(
        "--amp", action="store_true", help="also time SACAgent(amp=True): bf16 matmuls on CPU"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(
        f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
        f"batch {args.batch_size}, obs {OBS_DIM}, actions {ACT_DIM}, {args.clock} clock, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    equal = {"hidden_dims": [256, 256], "activations": "relu", "use_layer_norm": False}
    two = {
        "critic_ensemble_size": 2,
        "critic_subsample_size": None,
        "critic_network_kwargs": equal,
        "policy_network_kwargs": equal,
        "target_entropy": -float(ACT_DIM),
    }
    runners = {
        "stable-baselines3 SAC.train": sb3_reference(args.batch_size),
        "SACAgent.update": ours(args.batch_size, **two),
    }
    runners.update(options(args, two))
    rates = measure(runners, args.updates, args.rounds, args.clock)
    print(table("2 critics, [256, 256] ReLU, no LayerNorm", rates, "stable-baselines3 SAC.train"), "\n")

    serl = {"hidden_dims": [256, 256], "activations": "tanh", "use_layer_norm": True}
    ten = {
        "critic_ensemble_size": 10,
        "critic_subsample_size": 2,
        "critic_network_kwargs": serl,
        "policy_network_kwargs": serl,
    }
    runners = {
        "per-critic Python loop": loop_reference(args.batch_size, 10, 2),
        "SACAgent.update": ours(args.batch_size, **ten),
    }
    runners.update(options(args, ten))
    rates = measure(runners, max(10, args.updates // 4), args.rounds, args.clock)
    print(
        table(
            "10 critics, target min of 2, [256, 256] tanh + LayerNorm (SERL)", rates, "per-critic Python loop"
        )
    )
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (other processes share these cores)")


if __name__ == "__main__":
    main()

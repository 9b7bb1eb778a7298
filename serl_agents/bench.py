"""`serl bench`: run any SB3 algorithm, or a bundled agent, on any registered task over several seeds.

    serl bench --algo sb3:SAC --env SerlFrankaPickCube-v0 --steps 100000 --seeds 3 --out bench/
    serl bench --algo serl:sac --env SerlFrankaPickCube-v0 --steps 100000 --seeds 3 --out bench/
    serl bench --compare bench/sb3-SAC__SerlFrankaPickCube-v0 bench/serl-sac__SerlFrankaPickCube-v0

Every algorithm goes through the same loop: an SB3-style `model.learn` (bundled agents through their
SB3-shaped classes in `serl_agents.sb3`, with the SERL recipe as defaults) and the same periodic
evaluation: `eval_episodes` deterministic episodes on seeds `seed + 1_000_000 + i` (identical at every
evaluation and for every algorithm), success = `info["is_success"]` at the episode end. A run writes
`<out>/<algo>__<env>/`: seed_<k>.csv (env_steps, wall_time = training seconds without evaluation,
eval_return, eval_success_rate), curve.png, run.json (arguments, versions, machine), logs/ (SB3 logger).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import inspect
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

try:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
except ImportError as err:  # an optional extra (DESIGN §5)
    raise ImportError("`serl bench` needs stable-baselines3: pip install 'serl-torch[sb3]'") from err

from serl_agents.bench_report import (
    COLUMNS,
    find_runs,
    format_table,
    load_run,
    plot_runs,
    summarize,
)
from serl_agents.evaluate import evaluate


def _algorithms_in(module: Any, prefix: str) -> dict[str, type[BaseAlgorithm]]:
    return {
        f"{prefix}:{name}": value
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, BaseAlgorithm) and not inspect.isabstract(value)
    }


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """Every name `--algo` accepts: SB3's algorithms, sb3-contrib's if installed, the bundled agents."""
    import stable_baselines3

    from serl_agents import sb3 as serl_sb3

    choices = _algorithms_in(stable_baselines3, "sb3")
    if importlib.util.find_spec("sb3_contrib") is not None:
        choices.update(_algorithms_in(importlib.import_module("sb3_contrib"), "sb3c"))
    choices.update({"serl:sac": serl_sb3.SAC, "serl:drq": serl_sb3.DrQ})
    return choices


def resolve_algorithm(name: str) -> tuple[str, type[BaseAlgorithm]]:
    """(canonical name, class) for a case-insensitive `--algo` value; ValueError listing the choices."""
    choices = algorithms()
    by_lower = {key.lower(): key for key in choices}
    key = by_lower.get(name.lower())
    if key is not None:
        return key, choices[key]
    hint = ""
    if name.lower().startswith("sb3c:") and not any(k.startswith("sb3c:") for k in choices):
        hint = " (sb3-contrib is not installed: pip install sb3-contrib)"
    raise ValueError(f"unknown algorithm {name!r}{hint}; valid choices: {', '.join(sorted(choices))}")


def check_env_id(env_id: str) -> None:
    """ValueError naming the sim IDs when `env_id` is not a registered Gymnasium ID."""
    import serl_envs  # registers the Serl* IDs

    if env_id not in gym.registry:
        raise ValueError(
            f"unknown env {env_id!r}; valid choices: {', '.join(serl_envs.sim_env_ids())} "
            "(or any other registered Gymnasium ID)"
        )


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run: an algorithm on an env over seeds 0..seeds-1."""

    algo: str  # "sb3:SAC", "sb3:TD3", "sb3:PPO", "sb3c:TQC", "serl:sac", "serl:drq" (see `algorithms()`)
    env: str  # a registered Gymnasium ID
    steps: int = 100_000  # env steps per seed
    seeds: int = 3  # runs seeds 0, 1, ..., seeds - 1
    out: Path = Path("bench")  # the run goes to out/<algo>__<env>/
    eval_every: int = 5000  # env steps between evaluations (also at step 0 and at the end)
    eval_episodes: int = 10  # seeded deterministic episodes per evaluation
    # constructor kwargs of the algorithm, e.g. {"buffer_size": 100000}
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"  # passed to the algorithm (auto: cuda if available)
    torch_threads: int = 0  # torch CPU threads; 0: torch's default. 1 avoids thrashing on a busy machine

    def __post_init__(self) -> None:
        name, _ = resolve_algorithm(self.algo)
        object.__setattr__(self, "algo", name)
        check_env_id(self.env)
        for key in ("steps", "seeds", "eval_every", "eval_episodes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0, got {self.torch_threads}")
        reserved = sorted(set(self.algo_kwargs) & {"policy", "env", "seed", "device"})
        if reserved:
            raise ValueError(
                f"algo_kwargs may not set {reserved}: the benchmark sets them (use --device, --seeds)"
            )
        object.__setattr__(self, "out", Path(self.out))

    @property
    def run_dir(self) -> Path:
        return self.out / f"{self.algo.replace(':', '-')}__{self.env}"


class EvalCurveCallback(BaseCallback):
    """Seeded evaluations at step 0, every `every` env steps and at the end, appended to a CSV."""

    def __init__(self, eval_env: gym.Env, every: int, episodes: int, seed: int, csv_path: Path, total: int):
        super().__init__()
        self.eval_env, self.every, self.episodes, self.seed = eval_env, every, episodes, seed
        self.csv_path, self.total = csv_path, total
        self.next_eval = 0
        self.last_eval = -1
        self.eval_seconds = 0.0
        self.start = 0.0
        self.bar: tqdm  # created when training starts

    def _evaluate(self, step: int) -> None:
        began = time.perf_counter()
        result = evaluate(
            lambda obs: self.model.predict(obs, deterministic=True)[0],
            self.eval_env,
            self.episodes,
            self.seed,
        )
        ended = time.perf_counter()
        train_seconds = began - self.start - self.eval_seconds
        self.eval_seconds += ended - began
        with self.csv_path.open("a", newline="") as file:
            csv.writer(file).writerow(
                [step, round(train_seconds, 3), result.mean_return, result.success_rate]
            )
        self.last_eval, self.next_eval = step, (step // self.every + 1) * self.every
        self.bar.set_postfix(
            eval_success=f"{result.success_rate:.0%}", eval_return=f"{result.mean_return:.1f}"
        )

    def _on_training_start(self) -> None:
        with self.csv_path.open("w", newline="") as file:
            csv.writer(file).writerow(COLUMNS)
        self.bar = tqdm(
            total=self.total,
            desc=f"seed {self.seed}",
            unit="step",
            disable=os.environ.get("SERL_NO_PROGRESS") == "1",
        )
        self.start = time.perf_counter()
        self._evaluate(0)

    def _on_step(self) -> bool:
        self.bar.update(min(self.num_timesteps, self.total) - self.bar.n)
        if self.num_timesteps >= self.next_eval:
            self._evaluate(self.num_timesteps)
        return True

    def _on_training_end(self) -> None:
        if self.model.num_timesteps != self.last_eval:
            self._evaluate(self.model.num_timesteps)
        self.bar.close()


def _versions() -> dict[str, str]:
    import mujoco
    import stable_baselines3

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gym.__version__,
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
    }


def run_seed(cfg: BenchConfig, seed: int) -> Path:
    """Train one seed with periodic evaluation; returns its CSV."""
    from stable_baselines3.common.logger import configure

    _, algo_class = resolve_algorithm(cfg.algo)
    env = gym.make(cfg.env)
    eval_env = gym.make(cfg.env)
    policy = "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy"
    model = algo_class(policy, env, seed=seed, device=cfg.device, **cfg.algo_kwargs)
    model.set_logger(configure(str(cfg.run_dir / "logs" / f"seed_{seed}"), ["csv", "tensorboard"]))
    csv_path = cfg.run_dir / f"seed_{seed}.csv"
    callback = EvalCurveCallback(eval_env, cfg.eval_every, cfg.eval_episodes, seed, csv_path, cfg.steps)
    try:
        model.learn(total_timesteps=cfg.steps, callback=callback)
    finally:
        model.logger.close()
        model.get_env().close()
        eval_env.close()
    return csv_path


def run_bench(cfg: BenchConfig) -> Path:
    """Every seed of `cfg` in turn, then curve.png and a summary; returns the run directory."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    meta = {
        **asdict(cfg),
        "out": str(cfg.out),
        "seeds": list(range(cfg.seeds)),
        "versions": _versions(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "command": " ".join(sys.argv),
    }
    (cfg.run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    for seed in range(cfg.seeds):
        run_seed(cfg, seed)
    run = load_run(cfg.run_dir)
    plot_runs([run], cfg.run_dir / "curve.png", run.label)
    return cfg.run_dir


def compare(dirs: list[Path], out: Path) -> str:
    """Overlay runs in out/compare.png, write out/compare.md; returns the markdown table."""
    runs = [load_run(path) for path in find_runs(dirs)]
    envs = sorted({run.env for run in runs if run.env})
    plot_runs(runs, out / "compare.png", ", ".join(envs) or "comparison")
    table = format_table([summarize(run) for run in runs])
    (out / "compare.md").write_text(table + "\n")
    return table


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object like '{{\"buffer_size\": 1000}}', got {text!r}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serl bench",
        description="Benchmark an algorithm on a registered task over seeds, or compare finished runs.",
    )
    parser.add_argument("--algo", help="sb3:SAC, sb3:TD3, sb3:PPO, sb3c:TQC, serl:sac, serl:drq, ...")
    parser.add_argument("--env", help="a registered Gymnasium ID, e.g. SerlFrankaPickCube-v0")
    parser.add_argument("--steps", type=int, default=BenchConfig.steps, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=BenchConfig.seeds, help="number of seeds (0, 1, ...)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="runs go to OUT/<algo>__<env>/ (default bench/); with --compare: where compare.png/.md go",
    )
    parser.add_argument("--eval-every", type=int, default=BenchConfig.eval_every)
    parser.add_argument("--eval-episodes", type=int, default=BenchConfig.eval_episodes)
    parser.add_argument(
        "--algo-kwargs",
        type=_json_object,
        default={},
        help="JSON constructor kwargs, e.g. '{\"buffer_size\": 100000}'",
    )
    parser.add_argument("--device", default=BenchConfig.device)
    parser.add_argument("--torch-threads", type=int, default=BenchConfig.torch_threads)
    parser.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="overlay finished runs (run dirs, or folders of run dirs) instead of training",
    )
    parser.add_argument("--list", action="store_true", help="print the valid --algo and --env choices")
    return parser


def main_bench(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        import serl_envs

        print("algorithms:", ", ".join(sorted(algorithms())))
        print("envs:", ", ".join(serl_envs.sim_env_ids()))
        return 0
    if args.compare:
        if args.algo or args.env:
            parser.error("--compare takes finished run directories; do not combine it with --algo/--env")
        out = args.out or Path("bench")
        try:
            table = compare(args.compare, out)
        except ValueError as err:
            parser.error(str(err))
        print(table)
        print(f"\nplot: {out / 'compare.png'}; table: {out / 'compare.md'}")
        return 0
    if not args.algo or not args.env:
        parser.error("--algo and --env are required (or --compare DIR...)")
    try:
        cfg = BenchConfig(
            algo=args.algo,
            env=args.env,
            steps=args.steps,
            seeds=args.seeds,
            out=args.out or Path("bench"),
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            algo_kwargs=args.algo_kwargs,
            device=args.device,
            torch_threads=args.torch_threads,
        )
    except ValueError as err:
        parser.error(str(err))
    run_dir = run_bench(cfg)
    print(format_table([summarize(load_run(run_dir))]))
    print(f"\ncurves: {run_dir}/seed_*.csv; plot: {run_dir / 'curve.png'}")
    return 0

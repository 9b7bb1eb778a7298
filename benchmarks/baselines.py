"""Published baselines: SB3 SAC with its defaults vs our SAC (SERL's state recipe, through `serl_agents.sb3.SAC`)
on SerlFrankaPickCube-v0 and SerlFrankaPegInsert-v0 (state), several seeds each, through `serl bench`.

    python -m benchmarks.baselines                      # 3 seeds x 30k steps per run: ~1 day on 2 busy cores
    python -m benchmarks.baselines --steps 5000 --seeds 1 --out bench/baselines_short
    python -m benchmarks.baselines --algos serl:sac --envs SerlFrankaPegInsert-v0   # one part; finished runs are kept

Both algorithms see the same evaluations (`--eval-episodes` deterministic episodes on fixed seeds every
`--eval-every` steps). Writes <out>/<algo>__<env>/ per run (seed CSVs, curve.png, run.json),
<out>/compare_<env>.png per env, and <out>/baselines.md: the table with the command and machine, also printed.
A run whose seed CSVs already reach --steps is not run again (so an interrupted sweep continues).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from serl_agents.bench import BenchConfig, run_bench  # noqa: E402
from serl_agents.bench_report import curve_files, format_table, load_run, plot_runs, summarize  # noqa: E402

ALGOS = ("sb3:SAC", "serl:sac")  # SB3's SAC with every default vs the bundled agent with SERL's recipe
ENVS = ("SerlFrankaPickCube-v0", "SerlFrankaPegInsert-v0")


def finished(cfg: BenchConfig) -> bool:
    """Every seed's CSV exists and its last evaluation is at >= cfg.steps."""
    files = [cfg.run_dir / f"seed_{seed}.csv" for seed in range(cfg.seeds)]
    if not all(path.exists() for path in files) or not (cfg.run_dir / "run.json").exists():
        return False
    run = load_run(cfg.run_dir)
    return run.success.shape[0] == cfg.seeds and int(run.steps[-1]) >= cfg.steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=2000)  # SERL's eval_period
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/baselines"))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS))
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="1: small nets gain nothing from more, and threads thrash on a shared 2-core machine",
    )
    args = parser.parse_args()

    for env in args.envs:
        for algo in args.algos:
            cfg = BenchConfig(
                algo=algo,
                env=env,
                steps=args.steps,
                seeds=args.seeds,
                out=args.out,
                eval_every=args.eval_every,
                eval_episodes=args.eval_episodes,
                device=args.device,
                torch_threads=args.torch_threads,
            )
            if finished(cfg):
                print(f"{cfg.run_dir}: already finished, kept")
                continue
            print(f"== {algo} on {env}: {args.seeds} seeds x {args.steps} steps", flush=True)
            run_bench(cfg)

    runs_by_env = {
        env: [load_run(d) for d in sorted(args.out.glob(f"*__{env}")) if d.is_dir() and curve_files(d)]
        for env in args.envs
    }
    for env, runs in runs_by_env.items():
        plot_runs(runs, args.out / f"compare_{env}.png", env)
    table = format_table([summarize(run) for runs in runs_by_env.values() for run in runs])
    report = (
        f"{table}\n\nCommand: `python -m benchmarks.baselines {' '.join(sys.argv[1:])}`  \n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.platform()}), "
        f"torch threads {args.torch_threads}, device {args.device}.\n"
    )
    (args.out / "baselines.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()

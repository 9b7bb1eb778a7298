"""Learning curves of the bundled agents on the sim tasks, with the figures recorded in benchmarks/README.md.

    python -m benchmarks.learning sac-state            # SAC on SerlFrankaPickCube-v0 (target >= 90% success)
    python -m benchmarks.learning drq-demos            # DrQ on SerlFrankaPickCubeVision-v0 + 20 expert demos (>= 80%)
    python -m benchmarks.learning drq-cpu              # the same target with the drq-cpu preset (~1 h on one core)
    python -m benchmarks.learning sac-state --steps 30000 --seed 1 --out bench/learning

Each run writes <out>/<name>/eval.csv (env steps, wall time, eval return, success) and <out>/<name>.png.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from serl_agents.config import apply_preset  # noqa: E402
from serl_agents.train import train  # noqa: E402

RUNS = {
    "sac-state": {"preset": "serl-sac-state", "env": "SerlFrankaPickCube-v0", "steps": 20_000},
    "drq-demos": {"preset": "serl-drq", "env": "SerlFrankaPickCubeVision-v0", "steps": 20_000, "demos": 20},
    # 64x64 cameras: the expert demos are rolled out by `serl train` itself, with the run's env_kwargs
    "drq-cpu": {"preset": "drq-cpu", "env": "SerlFrankaPickCubeVision-v0", "steps": 20_000},
}


def record_expert_demos(env_id: str, episodes: int, out: Path) -> Path:
    from serl_envs.record import main_record_demos

    main_record_demos(["--env", env_id, "--device", "expert", "--episodes", str(episodes), "--out", str(out)])
    return out


def plot(csv_path: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open()))
    steps = [int(r["env_steps"]) for r in rows]
    success = [float(r["eval_success_rate"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, success, marker="o")
    ax.set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=sorted(RUNS))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/learning"))
    parser.add_argument("--agent-kwargs", default="{}", help="JSON overrides of the preset's agent fields")
    args = parser.parse_args()
    import json

    spec = dict(RUNS[args.run])
    name = f"{args.run}_seed{args.seed}"
    overrides = {"env": spec["env"], "steps": args.steps or spec["steps"], "seed": args.seed, "out": args.out / name,
                 "eval_every": 2000, "eval_episodes": 20, "video": False, "torch_threads": 1,
                 "agent_kwargs": json.loads(args.agent_kwargs)}
    if "demos" in spec:
        overrides["demos"] = record_expert_demos(spec["env"], spec["demos"], args.out / f"demos_{spec['env']}")
    cfg = apply_preset(spec["preset"], overrides)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; config:\n{cfg.to_json()}")
    result = train(cfg)
    plot(args.out / name / "eval.csv", args.out / f"{name}.png", f"{args.run} on {spec['env']}")
    rows = list(csv.DictReader((args.out / name / "eval.csv").open()))
    best = max(float(r["eval_success_rate"]) for r in rows)
    first80 = next((int(r["env_steps"]) for r in rows if float(r["eval_success_rate"]) >= 0.8), None)
    print(f"final success {result.success_rate:.0%}, best {best:.0%}, first >= 80% at {first80} env steps, "
          f"wall time {float(rows[-1]['wall_time']) / 60:.1f} min")


if __name__ == "__main__":
    main()

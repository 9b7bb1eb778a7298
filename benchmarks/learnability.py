"""Is every state task learnable? The bundled SAC (`serl train` defaults: 20 scripted-expert demos mixed 50/50,
2 critics, UTD 4) for a short run on each state ID, one run at a time, then one combined figure (issue 11).

    python -m benchmarks.learnability run                      # the 5 Franka state tasks besides PickCube
    python -m benchmarks.learnability run --envs SerlPiperPegInsert-v0 SerlPiperDrawerOpen-v0
    python -m benchmarks.learnability report --png benchmarks/images/learnability_sac_state.png

`run` trains with exactly `serl train --env ID --steps 10000 --torch-threads 1 --eval-every 2500 --eval-episodes 10
--video false --out OUT/ID` (OMP_NUM_THREADS=1), skipping IDs whose eval.csv already reaches --steps, then writes
OUT/ID/baseline.json: the untrained actor (the run's seed, so the run's initial weights) and the scripted expert,
each evaluated on the same 10 seeded episodes as the run's evaluations, so that a curve can be read against where it
started and against what the task pays for a solved episode. `report` prints the markdown table and draws the figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

FRANKA = [f"SerlFranka{t}-v0" for t in ("PegInsert", "PCBInsert", "BinRelocate", "CableRoute", "DrawerOpen")]
PIPER = [f"SerlPiper{t}-v0" for t in ("PickCube", "PegInsert", "PCBInsert", "BinRelocate", "CableRoute", "DrawerOpen")]


def train_command(env_id: str, steps: int, out: Path) -> list[str]:
    """The command each row of the README table was produced with."""
    return ["serl", "train", "--env", env_id, "--steps", str(steps), "--torch-threads", "1", "--eval-every", "2500",
            "--eval-episodes", "10", "--video", "false", "--out", str(out / env_id)]


def read_curve(run_dir: Path) -> list[dict]:
    """eval.csv rows as numbers: env_steps, wall_time, eval_return, eval_success_rate."""
    path = run_dir / "eval.csv"
    if not path.exists():
        return []
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(path.open())]


def baseline(run_dir: Path) -> dict:
    """Eval return/success of the untrained actor and of the scripted expert on the run's eval episodes."""
    import torch

    from serl_agents.config import load_run_config
    from serl_agents.evaluate import evaluate
    from serl_agents.train import make_agent, make_env, resolve_device
    from serl_envs.experts import make_expert

    torch.set_num_threads(1)
    cfg = load_run_config(run_dir)
    env = make_env(cfg.env, env_kwargs=cfg.env_kwargs)
    agent = make_agent(cfg, env.observation_space, env.action_space, resolve_device("cpu"))
    untrained = evaluate(lambda obs: agent.sample_actions(obs, deterministic=True), env, cfg.eval_episodes, cfg.seed)
    expert = make_expert(env)
    returns, wins, lengths = [], [], []
    for episode in range(cfg.eval_episodes):  # one call per episode: the expert's memory is reset between them
        expert.reset()
        one = evaluate(expert, env, 1, cfg.seed + episode)  # the seed evaluate() gives the run's episode `episode`
        returns.append(one.mean_return)
        wins.append(one.success_rate)
        lengths.append(one.mean_length)
    env.close()
    n = cfg.eval_episodes
    return {"untrained_return": untrained.mean_return, "untrained_success": untrained.success_rate,
            "untrained_length": untrained.mean_length, "expert_return": sum(returns) / n,
            "expert_success": sum(wins) / n, "expert_length": sum(lengths) / n}


def run(env_ids: list[str], steps: int, out: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL=os.environ["MUJOCO_GL"])
    for env_id in env_ids:
        run_dir = out / env_id
        curve = read_curve(run_dir)
        if not curve or curve[-1]["env_steps"] < steps:
            if curve:
                raise SystemExit(f"{run_dir} holds an unfinished run (eval.csv ends at {curve[-1]['env_steps']:.0f} "
                                 f"steps, not {steps}): remove it first")
            command = train_command(env_id, steps, out)
            print(" ".join(command), flush=True)
            start = time.perf_counter()
            with (out / f"{env_id}.log").open("w") as log:
                subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
            (run_dir / "process_wall_s.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
        if not (run_dir / "baseline.json").exists():
            (run_dir / "baseline.json").write_text(json.dumps(baseline(run_dir), indent=1))
        print(env_id, json.loads((run_dir / "baseline.json").read_text()), flush=True)


def rows(out: Path, env_ids: list[str]) -> list[tuple[str, list[dict], dict | None]]:
    found = []
    for env_id in env_ids:
        curve = read_curve(out / env_id)
        if curve:
            path = out / env_id / "baseline.json"
            found.append((env_id, curve, json.loads(path.read_text()) if path.exists() else None))
    return found


def table(found: list[tuple[str, list[dict], dict | None]]) -> str:
    """Markdown: return (success) at 0 / every eval, the expert's return, the loop's wall time."""
    steps = sorted({int(r["env_steps"]) for _, curve, _ in found for r in curve})
    head = ["ID", "@0 (untrained)"] + [f"@{s / 1000:g}k" for s in steps] + ["expert", "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for env_id, curve, base in found:
        by_step = {int(r["env_steps"]): r for r in curve}
        cells = [f"`{env_id}`", "n/a" if base is None else
                 f"{base['untrained_return']:.1f} ({base['untrained_success']:.0%})"]
        cells += [f"{by_step[s]['eval_return']:.1f} ({by_step[s]['eval_success_rate']:.0%})" if s in by_step else "-"
                  for s in steps]
        cells.append("n/a" if base is None else f"{base['expert_return']:.1f} ({base['expert_success']:.0%})")
        cells.append(f"{curve[-1]['wall_time'] / 60:.1f} min")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(found: list[tuple[str, list[dict], dict | None]], png: Path) -> None:
    """One panel per task: eval return (left axis, from the untrained actor at 0), success (right axis), and
    the scripted expert's return on the same episodes (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    nrows = (len(found) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, (env_id, curve, base) in zip(axes.flat, found, strict=False):
        steps = [r["env_steps"] for r in curve]
        returns = [r["eval_return"] for r in curve]
        success = [r["eval_success_rate"] for r in curve]
        if base is not None:
            steps, returns = [0.0] + steps, [base["untrained_return"]] + returns
            success = [base["untrained_success"]] + success
            ax.axhline(base["expert_return"], color="gray", ls="--", lw=1, label="expert return")
        ax.plot(steps, returns, marker="o", color="C0", label="eval return")
        ax.set(title=env_id.removeprefix("Serl").removesuffix("-v0"), xlabel="env steps", ylabel="eval return")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(steps, success, marker="s", color="C1", ls=":", label="success")
        twin.set(ylim=(-0.03, 1.03), ylabel="success")
    for ax in list(axes.flat)[len(found):]:
        ax.axis("off")
    handles = axes.flat[0].get_legend_handles_labels()
    twin_handles = [plt.Line2D([], [], color="C1", ls=":", marker="s")], ["eval success"]
    fig.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="lower center", ncol=3)
    fig.suptitle("bundled SAC + 20 expert demos (serl train defaults), 1 seed, 10 eval episodes")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--envs", nargs="+", default=None, help="state IDs (run: the Franka ones; report: all found)")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/learnability"))
    parser.add_argument("--png", type=Path, default=Path("benchmarks/images/learnability_sac_state.png"))
    args = parser.parse_args(argv)
    if args.action == "run":
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.envs or FRANKA, args.steps, args.out)
        return
    found = rows(args.out, args.envs or ["SerlFrankaPickCube-v0", *FRANKA, *PIPER])
    if not found:
        sys.exit(f"no eval.csv under {args.out}")
    print(table(found))
    plot(found, args.png)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()

"""HIL-SERL's learned gripper against none (issue 8): two `serl train` runs, one figure of success and interventions.

Both runs use the `hil-serl` preset (DrQ, 2 critics, UTD 2, discount 0.97, 20 scripted-expert demos at 50/50) with
the scripted expert intervening in the last 30% of the first 20 episodes; one has the grasp critic (`--grasp-critic
auto`: on for a task with a gripper), the other `--grasp-critic off`. On a CPU the vision task runs with drq-cpu's
sizing (64x64 cameras, half-width encoder, bf16, batch 128); `--full-size` keeps hil-serl's 128x128 and batch 256.

    python -m benchmarks.hil_grasp --steps 10000 --out bench/hil_grasp          # both runs (~1 h each on one core)
    python -m benchmarks.hil_grasp --plot-only --out bench/hil_grasp            # redraw from finished runs

Writes <out>/grasp_<auto|off>/ (run directories) and <out>/hil_grasp.png: eval success (ground truth) and the
intervention rate per training episode (TensorBoard `train/intervention_rate`) against env steps, with the success
rate of the last 20 training episodes (`train/success_rate`; interventions included) beside the evaluations.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ENV = "SerlFrankaPickCubeVision-v0"
CPU_SIZING = ["--env-kwargs", json.dumps({"image_size": [64, 64]}), "--batch-size", "128",
              "--agent-kwargs", json.dumps({"amp": True, "encoder_kwargs": {"features": [16, 32, 64, 128]}})]
MODES = ("auto", "off")


def train_command(mode: str, args: argparse.Namespace) -> list[str]:
    """The `serl train` arguments of one run (mode: the --grasp-critic value)."""
    command = ["train", "--preset", "hil-serl", "--env", args.env, "--intervention", "expert",
               "--intervention-episodes", "20", "--grasp-critic", mode, "--steps", str(args.steps),
               "--eval-every", str(args.eval_every), "--eval-episodes", "10", "--video", "false",
               "--torch-threads", "1", "--checkpoint-every", str(args.eval_every), "--resume", "true",
               "--seed", str(args.seed), "--out", str(args.out / f"grasp_{mode}")]  # fmt: skip
    return command if args.full_size else [*command, *CPU_SIZING]


def scalar_curve(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    """(env step, value) of a TensorBoard scalar of the run; empty if it never logged `tag`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return [], []
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], [s.value for s in scalars]


def intervention_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    """(env step, intervention rate) of every training episode."""
    return scalar_curve(run_dir, "train/intervention_rate")


def success_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    rows = list(csv.DictReader((run_dir / "eval.csv").open()))
    return [int(r["env_steps"]) for r in rows], [float(r["eval_success_rate"]) for r in rows]


def plot(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    for mode, label, color in (("auto", "grasp critic", "C0"), ("off", "no grasp critic", "C1")):
        run_dir = out / f"grasp_{mode}"
        if not (run_dir / "eval.csv").exists():
            continue
        top.plot(*success_curve(run_dir), marker="o", color=color, label=f"{label}: evaluation")
        top.plot(*scalar_curve(run_dir, "train/success_rate"), color=color, alpha=0.4, linewidth=1,
                 label=f"{label}: last 20 training episodes")  # fmt: skip
        bottom.plot(*intervention_curve(run_dir), marker=".", linestyle="-", color=color, label=label)
    top.set(ylabel="eval success (ground truth)", ylim=(-0.02, 1.02), title=f"HIL-SERL grasp critic on {ENV}")
    bottom.set(xlabel="env steps", ylabel="intervention rate per episode", ylim=(-0.02, 1.02))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = out / "hil_grasp.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=ENV)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/hil_grasp"))
    parser.add_argument("--full-size", action="store_true", help="hil-serl's 128x128 cameras and batch 256")
    parser.add_argument("--plot-only", action="store_true", help="only redraw the figure from finished runs")
    args = parser.parse_args()
    if not args.plot_only:
        from serl_agents.cli import main as serl

        for mode in MODES:
            serl(train_command(mode, args))
    print(f"wrote {plot(args.out)}")


if __name__ == "__main__":
    main()

"""Reading benchmark learning curves back: per-run summaries, a markdown table, and plots.

A run directory holds `seed_<k>.csv` files (written by `serl bench`) or one `eval.csv` (written by
`serl train`), each with the columns env_steps, wall_time, eval_return, eval_success_rate, and
optionally `run.json` naming the algorithm, the env and the seeds that belong to the run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ("env_steps", "wall_time", "eval_return", "eval_success_rate")
SUCCESS_THRESHOLD = 0.8  # "steps to 80% success" in the summary table


@dataclass(frozen=True)
class RunCurves:
    """One run's evaluations, seeds aligned on the env steps that every seed evaluated."""

    label: str  # legend / table name: "<algo> on <env>" from run.json, else the directory name
    env: str  # env ID, "" when unknown
    steps: np.ndarray  # (T,) evaluated env steps common to all seeds
    success: np.ndarray  # (S, T) eval success rate per seed
    returns: np.ndarray  # (S, T) mean eval return per seed
    wall_time: np.ndarray  # (S, T) training seconds (evaluation excluded) per seed


@dataclass(frozen=True)
class RunSummary:
    label: str
    seeds: int
    last_step: int  # last env step evaluated by every seed
    final_success_mean: float  # mean over seeds of the success rate at `last_step`
    final_success_std: float
    final_return_mean: float
    steps_to_threshold: int | None  # first evaluated step where the seed-mean success >= threshold
    seeds_reaching: int  # seeds whose own curve reached the threshold at some evaluation
    wall_minutes: float  # mean training wall time at `last_step`, minutes


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or any(column not in rows[0] for column in COLUMNS):
        raise ValueError(f"{path} is not a learning-curve CSV with columns {list(COLUMNS)}")
    return {column: np.array([float(row[column]) for row in rows]) for column in COLUMNS}


def curve_files(run_dir: Path) -> list[Path]:
    """The seed CSVs of a run: those run.json lists, else every seed_*.csv, else eval.csv."""
    meta = run_dir / "run.json"
    if meta.exists():
        seeds = json.loads(meta.read_text())["seeds"]
        return [run_dir / f"seed_{seed}.csv" for seed in seeds if (run_dir / f"seed_{seed}.csv").exists()]
    files = sorted(run_dir.glob("seed_*.csv"))
    if not files and (run_dir / "eval.csv").exists():
        files = [run_dir / "eval.csv"]
    return files


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Each path is a run directory, or a folder whose subdirectories are runs (e.g. `--out bench/`)."""
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise ValueError(f"{path} is not a directory")
        if curve_files(path):
            runs.append(path)
            continue
        children = [child for child in sorted(path.iterdir()) if child.is_dir() and curve_files(child)]
        if not children:
            raise ValueError(
                f"{path} holds no learning curves (seed_<k>.csv or eval.csv), nor do its subdirectories"
            )
        runs.extend(children)
    return runs


def load_run(run_dir: Path) -> RunCurves:
    files = curve_files(run_dir)
    if not files:
        raise ValueError(f"{run_dir} holds no learning curves (seed_<k>.csv or eval.csv)")
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    seeds = [_read_csv(path) for path in files]
    common = sorted(set.intersection(*(set(seed["env_steps"].tolist()) for seed in seeds)))
    if not common:
        raise ValueError(f"the seeds of {run_dir} share no evaluated env step")

    def aligned(column: str) -> np.ndarray:
        rows = []
        for seed in seeds:
            index = {step: i for i, step in enumerate(seed["env_steps"].tolist())}
            rows.append([seed[column][index[step]] for step in common])
        return np.array(rows)

    label = f"{meta['algo']} on {meta['env']}" if meta else run_dir.name
    return RunCurves(
        label=label,
        env=meta.get("env", ""),
        steps=np.array(common, dtype=np.int64),
        success=aligned("eval_success_rate"),
        returns=aligned("eval_return"),
        wall_time=aligned("wall_time"),
    )


def summarize(run: RunCurves, threshold: float = SUCCESS_THRESHOLD) -> RunSummary:
    mean_success = run.success.mean(axis=0)
    reached = np.flatnonzero(mean_success >= threshold)
    return RunSummary(
        label=run.label,
        seeds=run.success.shape[0],
        last_step=int(run.steps[-1]),
        final_success_mean=float(run.success[:, -1].mean()),
        final_success_std=float(run.success[:, -1].std()),
        final_return_mean=float(run.returns[:, -1].mean()),
        steps_to_threshold=int(run.steps[reached[0]]) if reached.size else None,
        seeds_reaching=int((run.success >= threshold).any(axis=1).sum()),
        wall_minutes=float(run.wall_time[:, -1].mean() / 60.0),
    )


def format_table(summaries: Sequence[RunSummary], threshold: float = SUCCESS_THRESHOLD) -> str:
    """A markdown table: final success (mean ± std over seeds), steps to the threshold, wall time."""
    pct = f"{threshold:.0%}"
    lines = [
        f"| run | seeds | env steps | final success | final return | steps to {pct} (seed mean) "
        f"| seeds reaching {pct} | train time (min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        to_threshold = f"{s.steps_to_threshold:,}" if s.steps_to_threshold is not None else "not reached"
        lines.append(
            f"| {s.label} | {s.seeds} | {s.last_step:,} | {s.final_success_mean:.0%} ± {s.final_success_std:.0%} "
            f"| {s.final_return_mean:.1f} | {to_threshold} | {s.seeds_reaching}/{s.seeds} | {s.wall_minutes:.1f} |"
        )
    return "\n".join(lines)


def plot_runs(runs: Sequence[RunCurves], path: Path, title: str) -> None:
    """Eval success rate and return vs env steps: seed mean as a line, min-max over seeds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_success, ax_return) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        for ax, values in ((ax_success, run.success), (ax_return, run.returns)):
            (line,) = ax.plot(run.steps, values.mean(axis=0), marker="o", markersize=3, label=run.label)
            if values.shape[0] > 1:
                ax.fill_between(
                    run.steps, values.min(axis=0), values.max(axis=0), alpha=0.2, color=line.get_color()
                )
    ax_success.set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02))
    ax_return.set(xlabel="env steps", ylabel="eval return")
    for ax in (ax_success, ax_return):
        ax.grid(alpha=0.3)
    ax_success.legend(fontsize=8)
    counts = sorted({run.success.shape[0] for run in runs})
    seeds = f"{'/'.join(map(str, counts))} seed{'s' if counts != [1] else ''}"
    fig.suptitle(f"{title} (mean over {seeds}, min-max shaded)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""`serl bench`: learning-curve CSVs and plots on tiny runs, the comparison table, argument errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from serl_agents.bench import BenchConfig, main_bench
from serl_agents.bench_report import RunCurves, format_table, load_run, summarize
from serl_agents.cli import main as serl_main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_SERL = {
    "buffer_size": 200,
    "learning_starts": 30,
    "batch_size": 8,
    "utd_ratio": 2,
    "critic_ensemble_size": 2,
    "policy_kwargs": {"net_arch": [16]},
}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny networks gain nothing from intra-op threads; on a busy machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def read_rows(path):
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_bench_writes_seed_curves_plot_and_metadata(tmp_path, capsys):
    code = main_bench(
        [
            "--algo",
            "serl:sac",
            "--env",
            "SerlFrankaPickCube-v0",
            "--steps",
            "60",
            "--seeds",
            "2",
            "--eval-every",
            "25",
            "--eval-episodes",
            "1",
            "--out",
            str(tmp_path),
            "--device",
            "cpu",
            "--algo-kwargs",
            json.dumps(TINY_SERL),
        ]
    )
    assert code == 0
    run_dir = tmp_path / "serl-sac__SerlFrankaPickCube-v0"
    for seed in (0, 1):
        rows = read_rows(run_dir / f"seed_{seed}.csv")
        assert list(rows[0]) == ["env_steps", "wall_time", "eval_return", "eval_success_rate"]
        assert [int(row["env_steps"]) for row in rows] == [0, 25, 50, 60]  # start, every 25, end
        assert all(0.0 <= float(row["eval_success_rate"]) <= 1.0 for row in rows)
        times = [float(row["wall_time"]) for row in rows]
        assert times == sorted(times)
    assert (run_dir / "curve.png").read_bytes()[:8] == PNG_SIGNATURE
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["algo"], meta["env"], meta["seeds"], meta["steps"]) == (
        "serl:sac",
        "SerlFrankaPickCube-v0",
        [0, 1],
        60,
    )
    assert "stable_baselines3" in meta["versions"]
    out = capsys.readouterr().out
    assert "| serl:sac on SerlFrankaPickCube-v0 | 2 | 60 |" in out


def test_bench_runs_sb3_ppo_and_seeds_are_reproducible(tmp_path):
    args = [
        "--algo",
        "sb3:PPO",
        "--env",
        "SerlFrankaPegInsert-v0",
        "--steps",
        "64",
        "--seeds",
        "1",
        "--eval-every",
        "64",
        "--eval-episodes",
        "1",
        "--device",
        "cpu",
        "--algo-kwargs",
        '{"n_steps": 32, "batch_size": 32, "n_epochs": 1}',
    ]
    for name in ("a", "b"):
        assert main_bench([*args, "--out", str(tmp_path / name)]) == 0
    runs = [read_rows(tmp_path / name / "sb3-PPO__SerlFrankaPegInsert-v0" / "seed_0.csv") for name in "ab"]
    assert [int(row["env_steps"]) for row in runs[0]] == [0, 64]
    strip = [
        [(row["env_steps"], row["eval_return"], row["eval_success_rate"]) for row in run] for run in runs
    ]
    assert strip[0] == strip[1]


def write_run(folder, algo, success_by_seed, steps=(0, 1000, 2000, 3000)):
    folder.mkdir(parents=True)
    for seed, success in enumerate(success_by_seed):
        with (folder / f"seed_{seed}.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["env_steps", "wall_time", "eval_return", "eval_success_rate"])
            for i, (step, rate) in enumerate(zip(steps, success, strict=True)):
                writer.writerow([step, 60.0 * i, 10.0 * rate, rate])
    meta = {"algo": algo, "env": "SerlFrankaPickCube-v0", "seeds": list(range(len(success_by_seed)))}
    (folder / "run.json").write_text(json.dumps(meta))


def test_compare_overlays_runs_and_prints_the_table(tmp_path, capsys):
    write_run(
        tmp_path / "runs" / "fast", "serl:sac", [[0, 0.6, 0.9, 1.0], [0, 0.8, 1.0, 1.0], [0, 0.7, 0.8, 0.9]]
    )
    write_run(tmp_path / "runs" / "slow", "sb3:SAC", [[0, 0, 0.2, 0.5], [0, 0.1, 0.3, 0.9]])
    assert main_bench(["--compare", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    # fast: seed-mean success 0.7 at 1000 steps, 0.9 at 2000; final 1.0, 1.0, 0.9
    assert "| serl:sac on SerlFrankaPickCube-v0 | 3 | 3,000 | 97% ± 5% | 9.7 | 2,000 | 3/3 | 3.0 |" in out
    assert (
        "| sb3:SAC on SerlFrankaPickCube-v0 | 2 | 3,000 | 70% ± 20% | 7.0 | not reached | 1/2 | 3.0 |" in out
    )
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "cmp" / "compare.md").read_text().splitlines()[2].startswith("| serl:sac")


def test_compare_reads_serl_train_run_directories(tmp_path, capsys):
    """A `serl train` run dir has one eval.csv and no run.json: one seed, labelled by the folder name."""
    run = tmp_path / "sac_pick"
    run.mkdir()
    (run / "eval.csv").write_text(
        "env_steps,wall_time,eval_return,eval_success_rate\n2000,30,5.0,0.5\n4000,60,9.0,0.9\n"
    )
    assert main_bench(["--compare", str(run), "--out", str(tmp_path)]) == 0
    assert "| sac_pick | 1 | 4,000 | 90% ± 0% | 9.0 | 4,000 | 1/1 | 1.0 |" in capsys.readouterr().out


def test_seeds_are_aligned_on_the_steps_all_of_them_evaluated(tmp_path):
    write_run(tmp_path / "run", "sb3:TD3", [[0.0, 0.5, 1.0, 1.0]])
    with (tmp_path / "run" / "seed_1.csv").open("w") as file:  # a seed stopped after 2000 steps
        file.write("env_steps,wall_time,eval_return,eval_success_rate\n0,0,0,0\n2000,9,1,0.5\n")
    (tmp_path / "run" / "run.json").write_text(json.dumps({"algo": "sb3:TD3", "env": "E", "seeds": [0, 1]}))
    run = load_run(tmp_path / "run")
    assert run.steps.tolist() == [0, 2000] and run.success.tolist() == [[0.0, 1.0], [0.0, 0.5]]


def test_summary_of_a_run_short_of_the_threshold():
    run = RunCurves(
        label="x",
        env="",
        steps=np.array([0, 10]),
        success=np.array([[0.0, 0.8], [0.0, 0.6]]),
        returns=np.array([[1.0, 2.0], [1.0, 4.0]]),
        wall_time=np.array([[0.0, 120.0], [0.0, 60.0]]),
    )
    summary = summarize(run)
    assert (summary.steps_to_threshold, summary.seeds_reaching, summary.final_return_mean) == (None, 1, 3.0)
    assert summary.wall_minutes == pytest.approx(1.5)
    assert "not reached | 1/2 | 1.5 |" in format_table([summary])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--algo", "sb3:Nope", "--env", "SerlFrankaPickCube-v0"],
            "unknown algorithm 'sb3:Nope'; valid choices: sb3:A2C, sb3:DDPG, sb3:DQN, sb3:PPO, sb3:SAC, sb3:TD3, ",
        ),
        (
            ["--algo", "sb3:SAC", "--env", "SerlFrankaNope-v0"],
            "unknown env 'SerlFrankaNope-v0'; valid choices: SerlFrankaPickCube-v0, SerlFrankaPickCubeVision-v0",
        ),
        (
            ["--algo", "sb3:SAC", "--env", "SerlFrankaPickCube-v0", "--steps", "0"],
            "steps must be >= 1, got 0",
        ),
        (["--algo", "sb3:SAC", "--env", "SerlFrankaPickCube-v0", "--algo-kwargs", "{bad"], "not valid JSON"),
        (
            ["--algo", "sb3:SAC", "--env", "SerlFrankaPickCube-v0", "--algo-kwargs", '{"seed": 3}'],
            "algo_kwargs may not set ['seed']: the benchmark sets them",
        ),
        (["--algo", "sb3:SAC"], "--algo and --env are required (or --compare DIR...)"),
        (
            ["--compare", "."],
            "holds no learning curves (seed_<k>.csv or eval.csv), nor do its subdirectories",
        ),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main_bench(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_serl_command_dispatches_to_bench(capsys):
    with pytest.raises(SystemExit):
        serl_main(["bench", "--algo", "nope:x", "--env", "SerlFrankaPickCube-v0"])
    assert "valid choices: sb3:A2C" in capsys.readouterr().err


def test_config_canonicalizes_algorithm_names(tmp_path):
    cfg = BenchConfig(algo="SB3:sac", env="SerlFrankaPickCube-v0", out=tmp_path)
    assert cfg.algo == "sb3:SAC" and cfg.run_dir == tmp_path / "sb3-SAC__SerlFrankaPickCube-v0"

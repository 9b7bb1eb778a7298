"""benchmarks/learnability.py: its training command is one `serl train` accepts, and its table reads the runs."""

import json

from benchmarks.learnability import rows, table, train_command
from serl_agents.cli import main as serl_main


def test_train_command_is_what_serl_train_runs(tmp_path, capsys):
    command = train_command("SerlFrankaDrawerOpen-v0", 10_000, tmp_path)
    assert command[:2] == ["serl", "train"]
    assert serl_main([*command[1:], "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["env"], cfg["steps"], cfg["torch_threads"], cfg["eval_every"], cfg["eval_episodes"], cfg["video"]) == (
        "SerlFrankaDrawerOpen-v0", 10_000, 1, 2500, 10, False)
    assert cfg["out"] == str(tmp_path / "SerlFrankaDrawerOpen-v0")
    assert (cfg["agent"], cfg["expert_demos"], cfg["utd_ratio"]) == ("sac", None, 4)  # the bundled defaults


def write_run(out, env_id, curve, base=None):
    run = out / env_id
    run.mkdir(parents=True)
    lines = ["env_steps,wall_time,eval_return,eval_success_rate"] + [",".join(map(str, r)) for r in curve]
    (run / "eval.csv").write_text("\n".join(lines) + "\n")
    if base is not None:
        (run / "baseline.json").write_text(json.dumps(base))


def test_table_lines_up_steps_and_marks_missing_values(tmp_path):
    base = {"untrained_return": 4.04, "untrained_success": 0.0, "expert_return": 91.0, "expert_success": 1.0}
    write_run(tmp_path, "SerlFrankaPegInsert-v0", [(2500, 60.0, 30.25, 0.0), (5000, 150.0, 80.0, 0.5)], base)
    write_run(tmp_path, "SerlFrankaCableRoute-v0", [(2500, 90.0, 12.0, 0.1)])
    found = rows(tmp_path, ["SerlFrankaPegInsert-v0", "SerlFrankaPCBInsert-v0", "SerlFrankaCableRoute-v0"])
    assert [env_id for env_id, _, _ in found] == ["SerlFrankaPegInsert-v0", "SerlFrankaCableRoute-v0"]
    assert table(found).splitlines() == [
        "| ID | @0 (untrained) | @2.5k | @5k | expert | wall time |",
        "|---|---|---|---|---|---|",
        "| `SerlFrankaPegInsert-v0` | 4.0 (0%) | 30.2 (0%) | 80.0 (50%) | 91.0 (100%) | 2.5 min |",
        "| `SerlFrankaCableRoute-v0` | n/a | 12.0 (10%) | - | n/a | 1.5 min |",
    ]

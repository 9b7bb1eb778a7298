"""Smoke tests: SERL's three entry points in examples/ run end to end on the library (tiny step counts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script, args",
    [
        ("async_sac_state_sim.py", ["--steps", "200", "--eval-episodes", "1"]),
        ("bc_policy.py", ["--steps", "50", "--expert-demos", "2", "--eval-episodes", "1"]),
        ("async_drq_sim.py", ["--steps", "20", "--expert-demos", "1", "--eval-episodes", "1"]),
    ],
)
def test_example_runs(script, args, tmp_path):
    env = {**os.environ, "SERL_NO_PROGRESS": "1", "MUJOCO_GL": "egl"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "final success rate:" in done.stdout
    assert (tmp_path / "run" / "eval.csv").exists()

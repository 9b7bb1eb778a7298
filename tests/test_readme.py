"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
# The real-robot example needs a server; training examples (`.learn(`) are exercised by tests/agents/test_sb3.py.
RUNNABLE = [b for b in BLOCKS if "robot_url" not in b and ".learn(" not in b]


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(RUNNABLE[index], f"README.md example {index}", "exec"), {})


def test_readme_has_the_examples():
    assert len(RUNNABLE) >= 2

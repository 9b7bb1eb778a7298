#!/usr/bin/env bash
# Fresh machine -> tests: creates .venv, installs PyTorch (CPU) and serl-torch with its test extras, runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0          # first: any other spec pulls several GB of CUDA wheels
pip install -q -e ".[dev]"
export MUJOCO_GL="${MUJOCO_GL:-egl}"  # headless rendering through Mesa
python -m pytest "$@"

#!/usr/bin/env bash
# Fresh machine -> the main job: installs serl-torch into .venv and runs the scripted expert on PickCube,
# printing its success rate and writing runs/expert_pick.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0
pip install -q -e .
export MUJOCO_GL="${MUJOCO_GL:-egl}"
python -m serl_envs.rollout --env SerlFrankaPickCube-v0 --episodes 10 --video runs/expert_pick.mp4 "$@"

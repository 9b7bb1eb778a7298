#!/usr/bin/env bash
# Fresh machine -> the main job: installs serl-torch into .venv and trains SAC on SerlFrankaPickCube-v0 with the
# embedded defaults (20 scripted-expert demos mixed 50/50, 15k env steps; ~30 min on 2 CPU cores), writing curves,
# checkpoints, TensorBoard logs and evaluation videos to runs/pick_sac. Extra arguments go to `serl train`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0          # first: any other spec pulls several GB of CUDA wheels
pip install -q -e .
export MUJOCO_GL="${MUJOCO_GL:-egl}"
serl train --out runs/pick_sac "$@"
serl eval --checkpoint runs/pick_sac --episodes 20 --video runs/pick_sac/final.mp4

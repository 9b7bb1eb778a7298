"""Render one picture per task for the README: the front camera at the moment the scripted expert succeeds.

Writes `docs/images/<ID>.png` (480 x 480, shadows and anti-aliasing on) for every task on one arm.

    MUJOCO_GL=egl python docs/task_images.py [--arm Franka] [--seed 0] [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402

from serl_envs.experts import make_expert  # noqa: E402
from serl_envs.registry import SIM_ARMS  # noqa: E402
from serl_envs.tasks import TASKS  # noqa: E402

HOLD_STEPS = 3  # render a few steps after success, once the motion has settled


def success_frame(env_id: str, seed: int) -> np.ndarray:
    """The frame HOLD_STEPS steps after the expert first succeeds (the last frame if it never does)."""
    env = gym.make(env_id, render_mode="rgb_array", fast_render=False)
    expert = make_expert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    since_success = None
    for _ in range(env.spec.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        if info["is_success"] and since_success is None:
            since_success = 0
        if since_success is not None:
            since_success += 1
        if since_success == HOLD_STEPS or terminated or truncated:
            break
    frame = env.render()
    env.close()
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", default="Franka", choices=sorted(SIM_ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        env_id = f"Serl{args.arm}{task}-v0"
        path = args.out / f"{env_id}.png"
        iio.imwrite(path, success_frame(env_id, args.seed))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

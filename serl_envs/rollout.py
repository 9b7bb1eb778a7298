"""Roll out the scripted expert on an ID, print its success rate and write a video.

    python -m serl_envs.rollout --env SerlFrankaPickCube-v0 --episodes 10 --video runs/expert_pick.mp4
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio

import serl_envs
from serl_envs.experts import make_expert


def rollout(env_id: str, episodes: int, video: Path | None, seed: int = 0) -> float:
    env = gym.make(env_id, render_mode="rgb_array" if video else None)
    expert = make_expert(env)
    frames, wins = [], 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        expert.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            done = terminated or truncated
            if video and episode < 3:
                frames.append(env.render())
        wins += info["is_success"]
        print(f"episode {episode}: {'success' if info['is_success'] else 'failure'}", flush=True)
    env.close()
    if video:
        video.parent.mkdir(parents=True, exist_ok=True)
        imageio.mimwrite(video, frames, fps=env.metadata["render_fps"])
        print(f"video of the first episodes: {video}")
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the scripted expert of a serl_envs ID.")
    parser.add_argument("--env", default="SerlFrankaPickCube-v0", choices=serl_envs.sim_env_ids())
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", type=Path, default=None, help="mp4/gif path for the first three episodes")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    rate = rollout(args.env, args.episodes, args.video, args.seed)
    print(f"{args.env}: expert success rate {rate:.0%} over {args.episodes} episodes")


if __name__ == "__main__":
    main()

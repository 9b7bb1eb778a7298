"""Env steps/s of every sim ID, and the ratio of one env step to the bare physics (and renders) it contains.

The reference runs in the same process on a copy of the same model: `mujoco.mj_step` for the same number of
substeps, plus for vision IDs the same two camera renders with a bare `mujoco.Renderer`. Targets: state IDs
<= 1.5x, vision IDs <= 1.2x. Also runs each expert over 50 seeded episodes and reports its success rate.

    MUJOCO_GL=egl python -m benchmarks.env_throughput [--steps 3000] [--expert-episodes 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import serl_envs  # noqa: E402
from serl_envs.experts import make_expert, run_expert_episode  # noqa: E402


def random_actions(env: gym.Env, steps: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)


def env_rate(env_id: str, steps: int, record: bool = False) -> tuple[float, list]:
    """Steps/s with random actions, resets included (what a training loop sees).

    With `record`, also returns what the physics was asked to do at each step (targets, controls, reset states),
    so the bare reference can replay exactly the same physics.
    """
    env = gym.make(env_id)
    data = env.unwrapped.data
    tape = []
    env.reset(seed=0)
    if record:
        tape.append(("reset", data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), data.mocap_quat.copy()))
    start = time.perf_counter()
    for a in random_actions(env, steps):
        _, _, terminated, truncated, _ = env.step(a)
        if record:
            tape.append(("step", data.mocap_pos.copy(), data.mocap_quat.copy(), data.ctrl.copy(), data.qfrc_applied.copy()))
        if terminated or truncated:
            env.reset()
            if record:
                tape.append(("reset", data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), data.mocap_quat.copy()))
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed, tape


def bare_rate(env_id: str, tape: list) -> float:
    """Replays the recorded physics (and renders) without the env: the floor any env could reach."""
    env = gym.make(env_id)
    model = env.unwrapped.model
    n_sub = env.unwrapped.robot.config.n_substeps
    data = mujoco.MjData(model)
    vision = "Vision" in env_id
    renderer = mujoco.Renderer(model, 128, 128) if vision else None
    cams = [model.camera("front").id, model.camera(env.unwrapped.robot.arm.wrist_camera).id]
    steps = 0
    start = time.perf_counter()
    for kind, a, b, c, d in tape:
        if kind == "reset":
            data.qpos[:], data.qvel[:], data.mocap_pos[:], data.mocap_quat[:] = a, b, c, d
            continue
        data.mocap_pos[:], data.mocap_quat[:], data.ctrl[:], data.qfrc_applied[:] = a, b, c, d
        mujoco.mj_step(model, data, nstep=n_sub)
        steps += 1
        if renderer is not None:
            for cam in cams:
                renderer.update_scene(data, camera=cam)
                renderer.render()
    elapsed = time.perf_counter() - start
    if renderer is not None:
        renderer.close()
    env.close()
    return steps / elapsed


def expert_success(env_id: str, episodes: int) -> float:
    env = gym.make(env_id)
    expert = make_expert(env)
    wins = 0
    for seed in range(episodes):
        _, _, info = run_expert_episode(env, expert, seed)
        wins += info["is_success"]
    env.close()
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per state ID (vision IDs use 1/10)")
    parser.add_argument("--expert-episodes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="env/bare pairs per ID; the median ratio is reported")
    parser.add_argument("--ids", default=None, help="comma-separated IDs (default: every sim ID)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, mujoco {mujoco.__version__}, MUJOCO_GL={os.environ['MUJOCO_GL']}")
    print("| ID | substeps | env steps/s (best) | bare steps/s (best) | median pair ratio (target) | expert success |")
    print("|---|---|---|---|---|---|")
    for env_id in args.ids.split(",") if args.ids else serl_envs.sim_env_ids():
        vision = "Vision" in env_id
        steps = args.steps // 10 if vision else args.steps
        _, tape = env_rate(env_id, steps, record=True)
        # Env and bare replay alternate, and the ratio is taken per pair: the machine is shared, and a pair run
        # back to back sees the same load. Report the median pair.
        pairs = [(env_rate(env_id, steps)[0], bare_rate(env_id, tape)) for _ in range(args.rounds)]
        ratios = sorted(bare / rate for rate, bare in pairs)
        ratio = ratios[len(ratios) // 2]
        rate, bare = max(p[0] for p in pairs), max(p[1] for p in pairs)
        n_sub = gym.make(env_id).unwrapped.robot.config.n_substeps
        target = 1.2 if vision else 1.5
        ok = "ok" if ratio <= target else "MISSED"
        success = expert_success(env_id, args.expert_episodes)
        print(f"| {env_id} | {n_sub} | {rate:.0f} | {bare:.0f} | {ratio:.2f} (<= {target}, {ok}) | "
              f"{success:.0%} of {args.expert_episodes} |", flush=True)


if __name__ == "__main__":
    main()

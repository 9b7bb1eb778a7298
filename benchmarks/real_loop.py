"""The real-robot loop on loopback against the twin: client-server overhead per env step and control-period jitter.

Starts `serl robot-server --backend twin` in a subprocess (real time, `--speed 1`), runs
`SerlFrankaPegInsertReal-v0` at 10 Hz with the scripted expert and measures, per env step:

- overhead: the time `env.step` takes minus the time it sleeps to the next deadline, i.e. the action map, the
  POST /command and the GET /state round trips (plus the camera images for `--obs-mode vision`), and the numpy
  work on both sides. Goal: p99 <= 5 ms.
- jitter: |actual - nominal| of the period between consecutive control ticks (the pacer's deadlines). Goal: p99 <= 5 ms.

    MUJOCO_GL=egl python -m benchmarks.real_loop [--steps 600] [--obs-mode state|vision] [--hz 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402

import serl_envs  # noqa: E402, F401
from serl_envs.experts import make_expert  # noqa: E402


def start_twin(speed: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "serl_envs.real.server", "--backend", "twin", "--task", "PegInsert",
                             "--port", str(port), "--speed", str(speed)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"robot server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("robot server did not start within 60 s")


def measure(url: str, steps: int, obs_mode: str, hz: float) -> dict[str, float]:
    env = gym.make("SerlFrankaPegInsertReal-v0", robot_url=url, obs_mode=obs_mode, control_hz=hz)
    robot = env.unwrapped.robot
    expert = make_expert(env)
    overhead, episodes = [], 0
    obs, _ = env.reset(seed=0)
    expert.reset()
    robot.pacer.clear()
    while len(overhead) < steps:
        action = expert(obs)
        start = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        overhead.append(time.perf_counter() - start - robot.pacer.last_wait)
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
            expert.reset()  # the reset's blocking moves are not control periods: settle() restarts the pacer
    timing = robot.timing()
    env.close()
    ms = np.array(overhead) * 1000.0
    return {
        "overhead_p50": float(np.percentile(ms, 50)), "overhead_p99": float(np.percentile(ms, 99)),
        "jitter_p50": timing.period_jitter_p50_ms, "jitter_p99": timing.period_jitter_p99_ms,
        "jitter_max": timing.period_jitter_max_ms, "overruns": timing.overruns, "episodes": episodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--obs-mode", choices=["state", "vision"], nargs="+", default=["state", "vision"])
    parser.add_argument("--hz", type=float, default=10.0)
    args = parser.parse_args()
    proc, url = start_twin(speed=1.0)
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"# {platform.machine()}, {os.cpu_count()} CPUs (load average {load}), Python {platform.python_version()}; "
              f"{args.steps} steps per row at {args.hz:g} Hz, twin at --speed 1\n")
        print("| obs | overhead p50 (ms) | overhead p99 (ms) | period jitter p50 (ms) | jitter p99 (ms) | jitter max (ms) | overruns |")
        print("|---|---|---|---|---|---|---|")
        for mode in args.obs_mode:
            r = measure(url, args.steps, mode, args.hz)
            print(f"| {mode} | {r['overhead_p50']:.2f} | {r['overhead_p99']:.2f} | {r['jitter_p50']:.2f} | "
                  f"{r['jitter_p99']:.2f} | {r['jitter_max']:.2f} | {r['overruns']} |", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

"""record-demos: drive an env with a device and save the episodes as a Minari dataset (`serl_envs.demos`).

    python -m serl_envs.record --env SerlFrankaPickCube-v0 --device expert --episodes 20 --out demos/pick

The person (or the scripted expert) is in control of every step: when the device is idle the arm holds still.
An episode ends when the env terminates or truncates, or when the person marks success, failure or the end
(keyboard `y` / `n` / `Enter`); its label is the person's mark if any, else the env's `info["is_success"]`.
Only successful episodes are kept unless `--keep-failures`. `--episodes N` is the number of episodes the dataset
should hold: run the same command again after an interruption and it records only what is missing. Human
devices run at the env's control rate (`--realtime`, on by default for them), so a sim moves at real speed, and
a sim env opens a MuJoCo viewer to watch it (`--view`, on by default for them under X).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import serl_envs  # noqa: F401  (registers the IDs)
from serl_envs.demos import DemoWriter, Episode
from serl_envs.wrappers.devices import DEVICE_NAMES, make_device
from serl_envs.wrappers.intervention import InterventionWrapper


class Pacer:
    """Sleeps to the next control tick (deadline based; never bursts to catch up after a stall)."""

    def __init__(self, dt: float) -> None:
        self.dt, self._deadline = dt, None

    def wait(self) -> None:
        now = time.monotonic()
        if self._deadline is None or now - self._deadline > self.dt:
            self._deadline = now
        self._deadline += self.dt
        time.sleep(max(0.0, self._deadline - time.monotonic()))


def record_episode(env: InterventionWrapper, seed: int, tick: Callable[[], None] | None = None) -> Episode:
    """One episode with the person in control; the idle action holds the arm still. `tick` runs after each step
    (pacing, viewer refresh)."""
    obs, info = env.reset(seed=seed)
    episode = Episode(observations=[obs], seed=seed)
    episode.infos = {"is_success": [bool(info.get("is_success", False))], "intervened": [False]}
    label = None
    while True:
        hold = env.hold_action()
        obs, reward, terminated, truncated, info = env.step(hold)
        if info.get("human_success"):
            label = True
        if info.get("human_failure"):
            label = False
        stopped = label is not None or bool(info.get("human_end"))
        episode.observations.append(obs)
        episode.actions.append(np.asarray(info.get("intervene_action", hold), dtype=np.float32))
        episode.rewards.append(float(reward))
        episode.terminations.append(bool(terminated))
        episode.truncations.append(bool(truncated or (stopped and not terminated)))
        episode.infos["is_success"].append(bool(info.get("is_success", False)))
        episode.infos["intervened"].append("intervene_action" in info)
        if tick is not None:
            tick()
        if terminated or truncated or stopped:
            break
    episode.success = label if label is not None else bool(info.get("is_success", False))
    return episode


@dataclass(frozen=True)
class RecordConfig:
    """What `record-demos` records; the command-line flags map one to one."""

    env_id: str  # a registered ID
    device: str  # keyboard | spacemouse | gamepad | expert
    episodes: int  # episodes the dataset should hold when done
    out: Path  # dataset folder, created or appended to
    seed: int = 0  # attempt k resets with seed + k
    keep_failures: bool = False  # keep failed episodes too (labelled success=False)
    realtime: bool | None = None  # step at the control rate; None: on for human devices
    view: bool | None = None  # show a MuJoCo viewer of a sim env; None: on for human devices when X is there
    max_attempts: int | None = None  # give up after this many episodes; None: 3 x episodes
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gym.make

    @property
    def human(self) -> bool:
        return self.device != "expert"

    @property
    def paced(self) -> bool:
        return self.human if self.realtime is None else self.realtime

    @property
    def shows_viewer(self) -> bool:
        return self.human and bool(os.environ.get("DISPLAY")) if self.view is None else self.view

    @property
    def attempt_budget(self) -> int:
        return 3 * self.episodes if self.max_attempts is None else self.max_attempts


class SimViewer:
    """A passive MuJoCo viewer of a sim env whose render thread is joined on close (a thread still drawing
    when the process exits can crash it)."""

    def __init__(self, model, data) -> None:
        import mujoco.viewer

        before = set(threading.enumerate())
        self._handle = mujoco.viewer.launch_passive(model, data, show_left_ui=False, show_right_ui=False)
        self._threads = [t for t in threading.enumerate() if t not in before]

    @classmethod
    def of(cls, env: gym.Env) -> SimViewer | None:
        """A viewer of `env`, or None for an env without a MuJoCo model (a real robot)."""
        try:
            model, data = env.unwrapped.model, env.unwrapped.data
        except AttributeError:
            return None
        return cls(model, data)

    def sync(self) -> None:
        if self._handle.is_running():
            self._handle.sync()

    def close(self) -> None:
        self._handle.close()
        for thread in self._threads:
            thread.join(timeout=10.0)


def record_demos(config: RecordConfig) -> int:
    """Record until the dataset at `config.out` holds `config.episodes` episodes; returns how many it holds."""
    c = config
    if c.device not in DEVICE_NAMES:
        raise ValueError(f"unknown device {c.device!r}; expected one of {DEVICE_NAMES}")
    if c.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {c.episodes}")
    env = gym.make(c.env_id, **c.env_kwargs)
    writer = DemoWriter(
        c.out, env.observation_space, env.action_space, env.spec,
        metadata={"serl_env_id": c.env_id, "algorithm_name": f"record-demos --device {c.device}"},
    )  # fmt: skip
    if writer.metadata.get("serl_env_id", c.env_id) != c.env_id:
        raise ValueError(
            f"{c.out} holds demos of {writer.metadata['serl_env_id']}, not {c.env_id}: use another --out"
        )
    pacer = Pacer(env.unwrapped.dt) if c.paced else None
    viewer = SimViewer.of(env) if c.shows_viewer else None

    def tick() -> None:
        if viewer is not None:
            viewer.sync()
        if pacer is not None:
            pacer.wait()

    device = make_device(c.device, env)
    wrapped = InterventionWrapper(env, device)
    print(f"recording {c.env_id} with the {c.device}. {device.hint}".strip(), flush=True)
    attempts = int(writer.metadata.get("serl_attempts", 0))
    budget = attempts + c.attempt_budget
    bar = tqdm(
        total=c.episodes,
        initial=min(writer.num_episodes, c.episodes),
        desc=f"demos ({c.device})",
        unit="episode",
    )
    try:
        while writer.num_episodes < c.episodes and attempts < budget:
            episode = record_episode(wrapped, c.seed + attempts, tick)
            attempts += 1
            if episode.success or c.keep_failures:
                index = writer.append(episode, metadata={"serl_attempts": attempts})
                tqdm.write(f"episode {index} saved ({len(episode)} steps, success={episode.success})")
                bar.update(1)
            bar.set_postfix(attempts=attempts)
    finally:
        bar.close()
        wrapped.close()
        if viewer is not None:
            viewer.close()
    if writer.num_episodes < c.episodes:
        print(
            f"stopped after {attempts} attempts with {writer.num_episodes}/{c.episodes} episodes",
            file=sys.stderr,
        )
    return writer.num_episodes


def main_record_demos(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="record-demos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="a registered ID, e.g. SerlFrankaPickCube-v0")
    parser.add_argument("--device", required=True, choices=DEVICE_NAMES)
    parser.add_argument("--episodes", type=int, default=20, help="episodes the dataset should hold")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (created, or appended to)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first attempt; attempt k uses seed + k"
    )
    parser.add_argument("--keep-failures", action="store_true", help="keep failed episodes too (labelled)")
    parser.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                        help="step at the env's control rate (default: on for human devices, off for expert)")  # fmt: skip
    parser.add_argument("--view", action=argparse.BooleanOptionalAction, default=None,
                        help="show a MuJoCo viewer of a sim env (default: on for human devices under X)")  # fmt: skip
    parser.add_argument(
        "--max-attempts", type=int, default=None, help="give up after this many (default 3x episodes)"
    )
    parser.add_argument(
        "--env-kwargs", type=json.loads, default=None, help="JSON, e.g. '{\"control_hz\": 10}'"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    config = RecordConfig(
        args.env, args.device, args.episodes, args.out, args.seed, args.keep_failures, args.realtime, args.view,
        args.max_attempts, args.env_kwargs or {},
    )  # fmt: skip
    held = record_demos(config)
    print(f"{args.out}: {held} episodes; load with serl_envs.demos.load_demos({str(args.out)!r})")
    return 0 if held >= args.episodes else 1


if __name__ == "__main__":
    sys.exit(main_record_demos())

"""Build a real `SerlEnv`: the entry point of every `Serl{Arm}{Task}Real-v0` ID.

The same `SerlEnv`, Task class and `ActionMap` as in sim; the robot is an `HttpRobot` talking to a robot server,
the scene a `StationScene`, and the task's class data (safety box, compliance, reset pose, rate) come from the
station config.

Observations. `obs_mode="vision"` (the default, as SERL's real envs): `state` = the task's proprioception from the
arm's own sensors, plus the `front` and `wrist` cameras. `obs_mode="state"`: proprioception plus the task's
privileged entries, which on a station come from its config (PegInsert: the hole pose derived from `target_pose`, a
constant per station); tasks whose privileged state would need an unobservable object (PickCube's cube) refuse it.

Cameras. `source="server"` cameras are the robot server's (the twin's renders); `"opencv"` and `"realsense"`
cameras are opened here, in the env's process, read at every step (the newest frame, cropped and resized to the
camera's `size`; `serl_envs.real.cameras`) and closed with the env. Both kinds mix in one station.

Rewards. A task whose reward reads only the arm and the station's fixtures (PegInsert) keeps its own reward. One
that needs an unobservable object (PickCube) refuses to build unless `reward_fn(observation) -> (reward, success)`
is given (a learned classifier, a key press); then the `ExternalReward` wrapper owns reward and success.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from serl_envs.env import IMAGE_KEYS, ObsMode, SerlEnv
from serl_envs.real import REAL_ARMS
from serl_envs.real.cameras import open_cameras
from serl_envs.real.client import HttpRobot, RobotClient
from serl_envs.real.config import StationConfig, station_config
from serl_envs.real.station import (
    ExternalReward,
    RewardFn,
    StationScene,
    fixture_poses,
    station_defaults,
    station_task,
    unobservable_objects,
)
from serl_envs.task import RewardType

TOKEN_ENV = "SERL_ROBOT_TOKEN"


def make_real_env(
    arm: str = "panda",
    task: str = "PegInsert",
    obs_mode: ObsMode = "vision",
    robot_url: str | None = None,
    station: str | Path | dict[str, Any] | StationConfig | None = None,
    token: str | None = None,
    reward_fn: RewardFn | None = None,
    reward_type: RewardType = "dense",
    terminate_on_success: bool | None = None,
    render_mode: str | None = None,
    **station_fields: Any,
) -> gym.Env:
    """`station` is a YAML/JSON path, a mapping or a StationConfig; `station_fields` (target_pose=..., safety_box=...,
    control_hz=...) override it, and `robot_url` overrides its URL. The token comes from `token` or $SERL_ROBOT_TOKEN.
    `arm` ("panda", "piper") picks the station defaults; the server must drive that arm (its /health says which)."""
    if arm not in REAL_ARMS.values():
        raise ValueError(f"unknown real arm {arm!r}; available: {sorted(REAL_ARMS.values())}")
    env_id = f"Serl{next(name for name, a in REAL_ARMS.items() if a == arm)}{task}Real-v0"
    if obs_mode not in ("state", "vision"):
        raise ValueError(f"obs_mode must be 'state' or 'vision', got {obs_mode!r}")
    config = station_config(station_defaults(task, arm), station, robot_url=robot_url, **station_fields)
    fixtures = fixture_poses(task, config)
    hidden = unobservable_objects(task, fixtures)
    if hidden and reward_fn is None:
        raise ValueError(
            f"{task} on a real robot: its reward needs the pose of {hidden}, which a real robot cannot observe. "
            f"Pass a reward from observations, e.g. gym.make('{env_id}', robot_url=..., "
            "reward_fn=my_fn) with my_fn(obs) -> (reward, success): a learned reward classifier on the camera "
            "images, or a human key press."
        )
    if hidden and obs_mode == "state":
        raise ValueError(f"{task} on a real robot has no state observation: {hidden} cannot be observed; use "
                         "obs_mode='vision'")
    if render_mode is not None and not config.cameras:
        raise ValueError("render_mode needs at least one camera in the station config")
    cameras = config.cameras if obs_mode == "vision" or render_mode is not None else ()
    names = tuple(c.name for c in cameras)
    if obs_mode == "vision" and set(names) != set(IMAGE_KEYS):
        raise ValueError(f"vision observations need cameras named {list(IMAGE_KEYS)}; the station has {list(names)}")
    sizes = {c.size for c in cameras}
    if len(sizes) > 1:
        raise ValueError(f"all cameras must share one size, got {[(c.name, c.size) for c in cameras]}")

    task_obj = station_task(task, config, external_reward=reward_fn is not None)(
        reward_type=reward_type, terminate_on_success=terminate_on_success
    )
    # local cameras open here, in the env's process (never next to the arm's real-time loop), before any connection
    local = open_cameras(c for c in cameras if c.is_local)
    client = None
    try:
        client = RobotClient(config.robot_url, token or os.environ.get(TOKEN_ENV), config.request_timeout)
        robot = HttpRobot(client, config.control_hz, config.reset_pose, config.compliance, task_obj.initial_gripper,
                          config.reset_lift, cameras=names, arm=arm,
                          camera_sizes={c.name: c.size for c in cameras if not c.is_local}, local_cameras=local)
        env = SerlEnv(task_obj, robot, StationScene(task, fixtures), obs_mode=obs_mode, render_mode=render_mode,
                      image_size=tuple(next(iter(sizes))) if sizes else (128, 128),
                      render_frame=(lambda: robot.cameras()[names[0]]) if names else None)
    except BaseException:
        for camera in local.values():
            camera.close()
        if client is not None:
            client.close()
        raise
    return ExternalReward(env, reward_fn) if reward_fn is not None else env

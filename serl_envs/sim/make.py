"""Build a simulated `SerlEnv` for an arm and a task: the entry point of every sim registry ID."""

from __future__ import annotations

from collections.abc import Callable

import mujoco

from serl_envs.env import IMAGE_KEYS, ObsMode, SerlEnv
from serl_envs.sim.arms.base import ArmInfo
from serl_envs.sim.arms.panda import add_panda
from serl_envs.sim.arms.piper import add_piper
from serl_envs.sim.robot import SimConfig, SimRobot
from serl_envs.sim.scene import RenderSettings
from serl_envs.task import RewardType
from serl_envs.tasks import TASKS

ARMS: dict[str, Callable[[mujoco.MjSpec], ArmInfo]] = {"panda": add_panda, "piper": add_piper}


def make_sim_env(
    arm: str = "panda",
    task: str = "PickCube",
    obs_mode: ObsMode = "state",
    render_mode: str | None = None,
    control_hz: float | None = None,
    physics_dt: float = 0.002,
    image_size: tuple[int, int] = (128, 128),
    render_size: tuple[int, int] = (480, 480),
    reward_type: RewardType = "dense",
    terminate_on_success: bool | None = None,
    fast_render: bool = True,
) -> SerlEnv:
    """Compose arm x task. `control_hz` defaults to the task's rate (20 Hz); set 10 to match SERL's real envs."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; available: {sorted(ARMS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; available: {sorted(TASKS)}")
    task_obj = TASKS[task](reward_type=reward_type, terminate_on_success=terminate_on_success, arm=arm)
    hz = control_hz if control_hz is not None else task_obj.control_hz
    config = SimConfig(
        control_dt=1.0 / hz,
        physics_dt=physics_dt,
        image_size=image_size,
        render_size=render_size,
        cameras=IMAGE_KEYS if obs_mode == "vision" else (),
        render=RenderSettings(fast=fast_render, max_size=max(640, *image_size, *render_size)),
    )
    robot = SimRobot(
        ARMS[arm], task_obj.objects, task_obj.home_pos, task_obj.nominal_quat, task_obj.compliance, config,
        initial_gripper=task_obj.initial_gripper,
    )
    return SerlEnv(
        task_obj, robot, robot.scene, obs_mode=obs_mode, render_mode=render_mode, image_size=image_size,
        render_frame=robot.render_view,
    )

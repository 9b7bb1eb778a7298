"""Every registered ID, generated from one table: Serl{Arm}{Task}[Vision]-v0 (DESIGN §2)."""

from __future__ import annotations

import gymnasium as gym

from serl_envs.real import register_real
from serl_envs.tasks import TASKS

SIM_ARMS = {"Franka": "panda", "Piper": "piper"}


def sim_env_ids() -> list[str]:
    """All sim IDs (state and vision), the list the registry-wide tests run over."""
    return [f"Serl{arm}{task}{suffix}-v0" for arm in SIM_ARMS for task in TASKS for suffix in ("", "Vision")]


def register_all() -> None:
    for arm_name, arm in SIM_ARMS.items():
        for task_name, task in TASKS.items():
            for suffix, obs_mode in (("", "state"), ("Vision", "vision")):
                env_id = f"Serl{arm_name}{task_name}{suffix}-v0"
                if env_id in gym.registry:
                    continue
                gym.register(
                    id=env_id,
                    entry_point="serl_envs.sim.make:make_sim_env",
                    max_episode_steps=round(task.episode_seconds * task.control_hz),
                    kwargs={"arm": arm, "task": task_name, "obs_mode": obs_mode},
                )
    register_real()

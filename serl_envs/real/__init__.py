"""Real robots through a robot server (`serl robot-server`), tested end to end against the MuJoCo twin.

`import serl_envs` registers `Serl{Arm}{Task}Real-v0` for every arm and task: `gym.make("SerlFrankaPegInsertReal-v0",
robot_url="http://127.0.0.1:5000", station="station.yaml")`, or `SerlPiper...Real-v0` for a Piper (its server is
`--backend piper`, or the twin with `--arm piper`). Importing this package needs no extra; the client,
server and backends import theirs (`pip install "serl-torch[real]"`) when used.
"""

from __future__ import annotations

import gymnasium as gym

from serl_envs.tasks import TASKS

REAL_ARMS = {"Franka": "panda", "Piper": "piper"}  # ID name -> sim arm name (the robot server's --arm)
REAL_CONTROL_HZ = 10.0  # SERL's real envs; a station may set its own control_hz


def real_env_ids() -> list[str]:
    return [f"Serl{arm}{task}Real-v0" for arm in REAL_ARMS for task in TASKS]


def register_real() -> None:
    for arm_name, arm in REAL_ARMS.items():
        for task_name, task in TASKS.items():
            env_id = f"Serl{arm_name}{task_name}Real-v0"
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point="serl_envs.real.make:make_real_env",
                    max_episode_steps=round(task.episode_seconds * REAL_CONTROL_HZ),
                    kwargs={"arm": arm, "task": task_name},
                )


__all__ = ["REAL_ARMS", "real_env_ids", "register_real"]

"""A task on a real station: the same Task class specialized with the station's data, and the Scene a station has.

A real robot measures only itself. What a task may still ask of the scene is the pose of a *fixture* that the
station config pins down: for PegInsert (PCBInsert) the board, derived from the measured `target_pose` (the TCP
pose with the peg fully inserted, the part seated). `REAL_TASKS` says this per task; a task without an entry has
no fixtures. Any other object (PickCube's cube) cannot be observed, so a task whose reward or state reads
one needs an external reward (`reward_fn`: a learned classifier, a key press) and vision observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from serl_envs.real import REAL_ARMS
from serl_envs.real.config import Pose, StationConfig
from serl_envs.task import Task
from serl_envs.tasks import TASKS
from serl_envs.tasks.pcb_insert import SEATED_TCP_Z
from serl_envs.tasks.peg_insert import INSERTED_TCP_Z
from serl_envs.transforms import quat_from_yaw, yaw_from_quat

ObjectPoses = dict[str, tuple[np.ndarray, np.ndarray]]
RewardFn = Callable[[Any], tuple[float, bool]]


@dataclass(frozen=True)
class RealTaskSpec:
    """How a task maps onto a station: its fixtures' poses as a function of the station's target pose."""

    default_target: Pose | None = None  # the sim task's nominal goal, the default of a station's target_pose
    fixtures: Callable[[Pose], ObjectPoses] | None = None
    reset_lift: float = 0.0  # default of the station's reset_lift


def _board_under(target: Pose, depth: float) -> ObjectPoses:
    """A board `depth` below the TCP at the target pose, turned by the TCP's heading (insertion tasks)."""
    pos = np.asarray(target.position, float) - np.array([0.0, 0.0, depth])
    return {"board": (pos, quat_from_yaw(yaw_from_quat(np.asarray(target.quat, float))))}


REAL_TASKS: dict[str, RealTaskSpec] = {
    "PickCube": RealTaskSpec(),
    # SERL's peg env lifts 10 cm out of the hole before it turns to the reset pose; the PCB pins are 8 mm long.
    "PegInsert": RealTaskSpec(Pose((0.5, 0.0, INSERTED_TCP_Z)), partial(_board_under, depth=INSERTED_TCP_Z), 0.1),
    "PCBInsert": RealTaskSpec(Pose((0.5, 0.0, SEATED_TCP_Z)), partial(_board_under, depth=SEATED_TCP_Z), 0.04),
}


def task_class(task: str) -> type[Task]:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; available: {sorted(TASKS)}")
    return TASKS[task]


def station_defaults(task: str, arm: str = "panda") -> dict[str, Any]:
    """The sim task's own values on `arm` as station defaults, so a twin of the sim env needs no config file: the
    arm's safety box (`Task.box_for`), the home as reset pose (clipped into that box: a small arm's box may end
    below the task's home, and a station resets inside its box) and the compliance the sim env runs that arm with.
    Poses are in the sim's task frame, which is what the twin reports; a hardware station sets its own."""
    if arm not in REAL_ARMS.values():
        raise ValueError(f"unknown real arm {arm!r}; available: {sorted(REAL_ARMS.values())}")
    cls, spec = task_class(task), REAL_TASKS.get(task, RealTaskSpec())
    box = cls.box_for(arm)
    return {
        "reset_pose": Pose(tuple(box.clip_position(np.asarray(cls.home_pos, float))), tuple(cls.nominal_quat.tolist())),
        "safety_box": box,
        "compliance": cls.compliance,
        "nominal_quat": tuple(cls.nominal_quat.tolist()),
        "target_pose": spec.default_target,
        "reset_lift": spec.reset_lift,
    }


def fixture_poses(task: str, station: StationConfig) -> ObjectPoses:
    """Poses of the objects the station pins down (empty for tasks without fixtures)."""
    spec = REAL_TASKS.get(task, RealTaskSpec())
    if spec.fixtures is None:
        return {}
    if station.target_pose is None:
        raise ValueError(f"{task} on a real station needs target_pose in the station config (measure it with "
                         "`serl record-pose`)")
    return spec.fixtures(station.target_pose)


def unobservable_objects(task: str, fixtures: ObjectPoses) -> list[str]:
    """Objects of the task a real robot cannot observe: neither held in the hand nor a station fixture."""
    return [o.name for o in task_class(task).objects if o.mount != "hand" and o.name not in fixtures]


class StationScene:
    """The Scene of a real station: fixtures at the poses of the station config; nothing else is observable."""

    def __init__(self, task: str, fixtures: ObjectPoses) -> None:
        self._task, self._fixtures = task, fixtures

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._fixtures:
            raise LookupError(
                f"{self._task}: the pose of {name!r} cannot be observed on a real robot; station fixtures: "
                f"{sorted(self._fixtures)}"
            )
        pos, quat = self._fixtures[name]
        return pos.copy(), quat.copy()

    def place(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        raise RuntimeError(f"a real station cannot place {name!r}: its objects are reset by the world, not the task")

    def joint_position(self, name: str) -> float:
        raise LookupError(f"{self._task}: the joint of {name!r} cannot be observed on a real robot")


class _OnStation:
    """Overrides of a task on a station: nothing to place at reset (the world resets a real scene)."""

    def reset(self, scene) -> None:
        return None


class _ExternalReward:
    """Reward and success belong to the `ExternalReward` wrapper that `make_real_env` puts around the env."""

    def reward(self, rs, scene) -> float:
        return 0.0

    def success(self, rs, scene) -> bool:
        return False


def station_task(task: str, station: StationConfig, external_reward: bool) -> type[Task]:
    """The task's class specialized with station data (safety box, compliance, reset pose, control rate)."""
    cls = task_class(task)
    bases = (_OnStation, _ExternalReward, cls) if external_reward else (_OnStation, cls)
    data = {
        "box": station.safety_box,
        "compliance": station.compliance,
        "home_pos": tuple(station.reset_pose.position),
        "nominal_quat": np.asarray(station.nominal_quat, float),
        "control_hz": station.control_hz,
    }
    return type(f"{cls.__name__}OnStation", bases, data)


class ExternalReward(gym.Wrapper):
    """Reward and success from `reward_fn(observation) -> (reward, success)`, for tasks whose own reward needs
    object state a real robot cannot measure. Success ends the episode when the task ends on success."""

    def __init__(self, env: gym.Env, reward_fn: RewardFn) -> None:
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable(observation) -> (reward, success), got {reward_fn!r}")
        super().__init__(env)
        self._reward_fn = reward_fn

    def _evaluate(self, obs) -> tuple[float, bool]:
        out = self._reward_fn(obs)
        try:
            reward, success = out
            return float(reward), bool(success)
        except (TypeError, ValueError) as err:
            raise TypeError(f"reward_fn must return (reward: float, success: bool), got {out!r}") from err

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "is_success": self._evaluate(obs)[1]}

    def step(self, action):
        obs, _, _, truncated, info = self.env.step(action)
        reward, success = self._evaluate(obs)
        terminated = success and self.env.unwrapped.task.terminate_on_success
        return obs, reward, terminated, truncated, {**info, "is_success": success}

"""The Task: what to do, declared as data plus a few small methods (reward, success, reset distribution).

A task never imports mujoco and never counts steps (STYLE 2, 5): it reads the `RobotState`, asks the `Scene` for
object poses, and the env core owns time. A new task is one file in `serl_envs/tasks/` plus one registry line.

Safety boxes per arm: `box` is the task's box, written for the Franka (SERL's numbers where SERL has the task). An
arm that cannot reach every corner of it pointing down (the smaller Piper) gets its own box from `arm_boxes`, a
per-arm override table declared next to `box` in the task file: a box inside `box` whose every corner the arm reaches
at the nominal orientation (tests/envs/test_reachability.py drives each corner through the controller), and that
still holds everything the task and its expert need (the spawn area, the target). A table of declared boxes, and not
a box computed from the arm's reach: pointing down, an arm reaches a dome, not a box, so which sides to cut is a
per-task choice (keep the spawn area, give up height). An arm's home may lie above its box's top (a small arm cannot
reach the top of a Franka-sized box over the whole spawn area); the first step's target is then clipped into the box.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import Declared
from serl_envs.robot import RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionLayout, ActionScale, SafetyBox
from serl_envs.transforms import quat_canonical, quat_conj, quat_mul

RewardType = Literal["dense", "sparse"]
DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # TCP pointing down, fingers closing along the base y axis


class Task(ABC):
    """Base class of every task; subclasses set the class-level data and implement the abstract methods."""

    name: ClassVar[str]
    layout: ClassVar[ActionLayout]
    scale: ClassVar[ActionScale]
    box: SafetyBox  # the task's (the Franka's) box on the class; an instance holds its arm's box (`box_for`)
    arm_boxes: ClassVar[Mapping[str, SafetyBox]] = {}  # sim arm name ("piper") -> its box, where it cannot reach `box`
    compliance: ClassVar[Compliance]
    objects: ClassVar[tuple[Declared, ...]]  # scene objects and cables
    home_pos: ClassVar[tuple[float, float, float]]
    nominal_quat: ClassVar[np.ndarray] = DOWN_QUAT
    initial_gripper: ClassVar[float] = 0.0  # 0 open, 1 closed
    control_hz: ClassVar[float] = 20.0  # default control rate of the sim IDs
    episode_seconds: ClassVar[float] = 5.0  # registered max_episode_steps = episode_seconds * control_hz
    privileged_dim: ClassVar[int]  # object-state entries appended to the state of state IDs

    def __init__(
        self, reward_type: RewardType = "dense", terminate_on_success: bool | None = None, arm: str | None = None
    ) -> None:
        """`arm`: the sim arm the task runs on ("panda", "piper"), which picks its safety box; None (a real
        station, whose box comes from its config) keeps the class's `box`."""
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        self.reward_type = reward_type
        self.box = self.box_for(arm)
        # Sparse rewards end the episode on success (SERL's real envs); dense rewards ask to reach and hold.
        self.terminate_on_success = reward_type == "sparse" if terminate_on_success is None else terminate_on_success
        self.np_random = np.random.default_rng()  # replaced by the env's generator at every reset

    @classmethod
    def box_for(cls, arm: str | None) -> SafetyBox:
        """The safety box on `arm`: its entry in `arm_boxes`, else the task's `box`."""
        return cls.box if arm is None else cls.arm_boxes.get(arm, cls.box)

    # --- observations ---------------------------------------------------------------------------------------
    def relative_quat(self, rs: RobotState) -> np.ndarray:
        """TCP orientation relative to the nominal one, w >= 0: continuous where absolute quaternions flip."""
        return quat_canonical(quat_mul(quat_conj(self.nominal_quat), rs.tcp_quat))

    def proprio(self, rs: RobotState) -> np.ndarray:
        """Robot-only observation (also what vision IDs see). Default: SERL's tcp_pos, tcp_vel, gripper."""
        return np.concatenate([rs.tcp_pos, rs.tcp_twist[:3], [rs.gripper_width]])

    @property
    def proprio_dim(self) -> int:
        return 7

    @abstractmethod
    def privileged(self, scene: Scene) -> np.ndarray:
        """Object state for state IDs (never shown to vision IDs)."""

    # --- episode --------------------------------------------------------------------------------------------
    @abstractmethod
    def reset(self, scene: Scene) -> None:
        """Place the objects for a new episode, drawing only from `self.np_random`."""

    @abstractmethod
    def reward(self, rs: RobotState, scene: Scene) -> float: ...

    @abstractmethod
    def success(self, rs: RobotState, scene: Scene) -> bool: ...

    @abstractmethod
    def expert_action(self, rs: RobotState, scene: Scene, memory: dict, dt: float) -> np.ndarray:
        """One action of the scripted expert (may read privileged sim state); `memory` persists over an episode."""

    # --- helpers --------------------------------------------------------------------------------------------
    def move_towards(self, rs: RobotState, goal: np.ndarray, dt: float) -> np.ndarray:
        """Normalized xyz action that heads for `goal` and slows down near it."""
        return np.clip((goal - rs.tcp_pos) / (self.scale.linear * dt), -1.0, 1.0)

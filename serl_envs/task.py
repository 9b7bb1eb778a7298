"""The Task: what to do, declared as data plus a few small methods (reward, success, reset distribution).

A task never imports mujoco and never counts steps (STYLE 2, 5): it reads the `RobotState`, asks the `Scene` for
object poses, and the env core owns time. A new task is one file in `serl_envs/tasks/` plus one registry line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
    box: ClassVar[SafetyBox]
    compliance: ClassVar[Compliance]
    objects: ClassVar[tuple[Declared, ...]]  # scene objects and cables
    home_pos: ClassVar[tuple[float, float, float]]
    nominal_quat: ClassVar[np.ndarray] = DOWN_QUAT
    initial_gripper: ClassVar[float] = 0.0  # 0 open, 1 closed
    control_hz: ClassVar[float] = 20.0  # default control rate of the sim IDs
    episode_seconds: ClassVar[float] = 5.0  # registered max_episode_steps = episode_seconds * control_hz
    privileged_dim: ClassVar[int]  # object-state entries appended to the state of state IDs

    def __init__(self, reward_type: RewardType = "dense", terminate_on_success: bool | None = None) -> None:
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        self.reward_type = reward_type
        # Sparse rewards end the episode on success (SERL's real envs); dense rewards ask to reach and hold.
        self.terminate_on_success = reward_type == "sparse" if terminate_on_success is None else terminate_on_success
        self.np_random = np.random.default_rng()  # replaced by the env's generator at every reset

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

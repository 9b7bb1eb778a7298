"""SerlEnv: the one `gym.Env` of this project, a Robot composed with a Task (DESIGN §1).

The loop owns time (STYLE 2): it maps the action, commands the robot, waits one control period, reads the state
and asks the task for reward and success. `terminated` comes only from success when the task ends on success;
truncation only from the `TimeLimit` of the registration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from serl_envs.robot import Robot, RobotState
from serl_envs.scene import Scene
from serl_envs.spaces import ActionMap
from serl_envs.task import Task

ObsMode = Literal["state", "vision"]
IMAGE_KEYS = ("front", "wrist")
STATE_BOUND = 1e4  # finite bounds (checkers reject inf); no state entry comes near it (forces are capped)


class SerlEnv(gym.Env):
    """A manipulation task on an arm; see the task module's docstring for spaces, reward and success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: Task,
        robot: Robot,
        scene: Scene,
        obs_mode: ObsMode = "state",
        render_mode: str | None = None,
        image_size: tuple[int, int] = (128, 128),
        render_frame: Callable[[], np.ndarray] | None = None,
    ) -> None:
        if obs_mode not in ("state", "vision"):
            raise ValueError(f"obs_mode must be 'state' or 'vision', got {obs_mode!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.task, self.robot, self.scene = task, robot, scene
        self._render_frame = render_frame or (lambda: next(iter(self.robot.cameras().values())))
        self.obs_mode, self.render_mode = obs_mode, render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / robot.control_dt)}
        self.action_map = ActionMap(task.layout, task.scale, task.box, task.nominal_quat, task.initial_gripper)
        self.action_space = spaces.Box(-1.0, 1.0, (task.layout.dim,), np.float32)
        if obs_mode == "state":
            dim = task.proprio_dim + task.privileged_dim
            self.observation_space = spaces.Box(-STATE_BOUND, STATE_BOUND, (dim,), np.float32)
        else:
            image = spaces.Box(0, 255, (*image_size, 3), np.uint8)
            self.observation_space = spaces.Dict(
                {"state": spaces.Box(-STATE_BOUND, STATE_BOUND, (task.proprio_dim,), np.float32), **dict.fromkeys(IMAGE_KEYS, image)}
            )
        self._rs: RobotState | None = None
        self.target_pos: np.ndarray | None = None  # the last commanded (clipped) TCP target
        self.target_quat: np.ndarray | None = None

    @property
    def dt(self) -> float:
        """Seconds of (simulated) time per env step."""
        return self.robot.control_dt

    @property
    def model(self):
        """The MuJoCo model (sim robots only), like Gymnasium's MuJoCo envs."""
        return self.robot.model

    @property
    def data(self):
        """The MuJoCo data (sim robots only)."""
        return self.robot.data

    # --- gym API ----------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task.np_random = self.np_random
        self.robot.reset()
        self.task.reset(self.scene)
        self.robot.settle()
        self._rs = self.robot.state()
        self.target_pos, self.target_quat = self._rs.tcp_pos.copy(), self._rs.tcp_quat.copy()
        return self._observation(self._rs), {"is_success": self.task.success(self._rs, self.scene)}

    def step(self, action):
        if self._rs is None:
            raise RuntimeError("call reset() before step()")
        target_pos, target_quat, gripper = self.action_map(action, self._rs.tcp_pos, self._rs.tcp_quat, self.dt)
        self.robot.command(target_pos, target_quat, gripper)
        self.target_pos, self.target_quat = target_pos, target_quat
        self.robot.wait()
        rs = self._rs = self.robot.state()
        success = self.task.success(rs, self.scene)
        reward = self.task.reward(rs, self.scene)
        terminated = success and self.task.terminate_on_success
        return self._observation(rs), reward, terminated, False, {"is_success": success}

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render_frame()
        return None

    def close(self) -> None:
        self.robot.close()

    # --- internals ----------------------------------------------------------------------------------------------
    def _observation(self, rs: RobotState):
        proprio = self.task.proprio(rs)
        if self.obs_mode == "state":
            return np.concatenate((proprio, self.task.privileged(self.scene)), dtype=np.float32)
        return {"state": proprio.astype(np.float32), **self.robot.cameras()}

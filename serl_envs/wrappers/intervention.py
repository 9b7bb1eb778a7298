"""InterventionWrapper: a person (or a scripted stand-in) can take over from the policy at any step (HIL-SERL).

Each step asks the device for a command. When the device is in control its command replaces the policy's action,
is executed, and is reported as `info["intervene_action"]` (the env action actually run; the key is absent on
policy steps), so a learner can store the human's action and put the transition in its demo buffer too.
Device marks are reported as `info["human_success"]`, `info["human_failure"]`, `info["human_end"]` (True, present
only on the step after the mark) so a recorder or a training loop can label and end episodes.

A `DeviceAction` maps onto the env's action layout: xyz (x `mapping.translation`), rotations when the task has
them (x `mapping.rotation`), and the gripper when it has one: the device's command x `mapping.gripper`, or, when
the device sends no gripper command, the last executed gripper action — the env's gripper action is absolute, so
"no command" must mean "stay", not "half closed".
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from serl_envs.spaces import ActionLayout
from serl_envs.wrappers.devices.base import ActionMapping, Device, DeviceAction


class InterventionWrapper(gym.Wrapper):
    """Lets `device` override the policy's actions.

    Args:
        env: the env to control; a serl_envs env tells its own action layout.
        device: keyboard, SpaceMouse, gamepad, scripted or expert device.
        mapping: device-to-env gains; default the device's own `mapping`.
        layout: the env's action layout, needed only for envs that are not serl_envs envs.
    """

    def __init__(
        self,
        env: gym.Env,
        device: Device,
        mapping: ActionMapping | None = None,
        layout: ActionLayout | None = None,
    ) -> None:
        super().__init__(env)
        task = getattr(env.unwrapped, "task", None)
        if layout is None:
            if task is None:
                raise ValueError(
                    f"InterventionWrapper needs layout=ActionLayout(...) for {type(env.unwrapped).__name__}"
                )
            layout = task.layout
        shape = getattr(env.action_space, "shape", None)
        if shape != (layout.dim,):
            raise ValueError(
                f"action layout {layout.names} does not match the env's action space shape {shape}"
            )
        self.device, self.layout = device, layout
        self.mapping = mapping or device.mapping
        initial = getattr(task, "initial_gripper", 0.0)  # 0 open ... 1 closed
        self._initial_gripper = 2.0 * initial - 1.0  # as an action: -1 open ... +1 closed
        self._gripper = self._initial_gripper

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.device.reset()
        self.device.events()  # marks made between episodes belong to none
        self._gripper = self._initial_gripper
        return obs, info

    def step(self, action):
        command = self.device.read()
        events = self.device.events()
        if command is not None:
            action = self.env_action(command)
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        if command is not None:
            info["intervene_action"] = action.copy()
        if self.layout.gripper:
            self._gripper = float(np.clip(np.asarray(action, dtype=np.float64)[-1], -1.0, 1.0))
        for event in sorted(events):
            info[f"human_{event}"] = True
        return obs, reward, terminated, truncated, info

    def env_action(self, command: DeviceAction | np.ndarray) -> np.ndarray:
        """The env action for a device command (a full env action passes through unchanged)."""
        if not isinstance(command, DeviceAction):
            action = np.asarray(command, dtype=np.float32)
            if action.shape != (self.layout.dim,):
                raise ValueError(
                    f"device returned an action of shape {action.shape}, expected ({self.layout.dim},)"
                )
            return action.copy()
        parts = [command.twist[:3] * self.mapping.translation]
        if self.layout.rotation:
            parts.append(command.twist[3:] * self.mapping.rotation)
        if self.layout.gripper:
            gripper = self._gripper if command.gripper is None else command.gripper * self.mapping.gripper
            parts.append([gripper])
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)

    def hold_action(self) -> np.ndarray:
        """The env action that keeps the arm where it is and the gripper as last commanded (an idle person)."""
        action = np.zeros(self.layout.dim, dtype=np.float32)
        if self.layout.gripper:
            action[-1] = self._gripper
        return action

    def close(self) -> None:
        self.device.close()
        super().close()

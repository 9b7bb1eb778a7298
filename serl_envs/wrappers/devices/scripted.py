"""Programmatic devices for tests and sim demos: a function (`ScriptedDevice`) or the task's expert (`ExpertDevice`).

Both count steps within an episode and episodes since construction, so "who is in control" can be scheduled:
`active(episode, step) -> bool`, e.g. `lambda ep, t: ep < 10 and t >= 30` — let the policy explore 30 steps,
then take over, in the first ten episodes (HIL-SERL's advice for early training).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from serl_envs.experts import make_expert
from serl_envs.wrappers.devices.base import Device, DeviceAction

Schedule = Callable[[int, int], bool]


class ScriptedDevice(Device):
    """Commands `fn(episode, step)` (an env action or a `DeviceAction`) whenever `active(episode, step)` is true."""

    def __init__(
        self,
        fn: Callable[[int, int], np.ndarray | DeviceAction],
        active: Schedule | None = None,
    ) -> None:
        self._fn = fn
        self._active = active or (lambda episode, step: True)
        self.episode, self.step = -1, 0  # the first reset starts episode 0

    def reset(self) -> None:
        self.episode, self.step = self.episode + 1, 0

    def read(self) -> np.ndarray | DeviceAction | None:
        episode, step = max(self.episode, 0), self.step
        self.step += 1
        if not self._active(episode, step):
            return None
        command = self._fn(episode, step)
        return command if isinstance(command, DeviceAction) else np.asarray(command, dtype=np.float32)


class ExpertDevice(ScriptedDevice):
    """The task's scripted expert (`serl_envs.experts`) as the person in the loop.

    Args:
        env: the serl_envs env the expert acts in (any wrapper around it).
        active_fraction: the expert takes over for the last `active_fraction` of each episode's
            `max_episode_steps` (1.0, the default: always in control — for recording demos).
        schedule: instead, an explicit `schedule(episode, step) -> bool`.
    """

    def __init__(
        self, env: gym.Env, active_fraction: float | None = None, schedule: Schedule | None = None
    ) -> None:
        if active_fraction is not None and schedule is not None:
            raise ValueError("ExpertDevice takes active_fraction or schedule, not both")
        if schedule is None:
            fraction = 1.0 if active_fraction is None else active_fraction
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"active_fraction must be in [0, 1], got {active_fraction!r}")
            horizon = env.spec.max_episode_steps if env.spec is not None else None
            if fraction < 1.0 and horizon is None:
                raise ValueError(
                    "active_fraction < 1 needs an env with max_episode_steps (registered TimeLimit)"
                )
            start = 0 if fraction == 1.0 else round((1.0 - fraction) * horizon)
            schedule = lambda episode, step: step >= start  # noqa: E731
        self._expert = make_expert(env)
        super().__init__(lambda episode, step: self._expert(), schedule)

    def reset(self) -> None:
        super().reset()
        self._expert.reset()

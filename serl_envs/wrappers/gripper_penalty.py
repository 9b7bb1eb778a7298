"""GripperPenaltyWrapper: `info["grasp_penalty"]` is `penalty` on a step whose gripper command toggles, else 0.

HIL-SERL charges its grasp critic a small cost each time the gripper changes state, so the learned gripper does
not chatter. The commanded state has hysteresis: an action above +0.5 means closed, below -0.5 open, anything
in between keeps the previous state (so a "stay" of 0 never toggles). The executed action is
`info["intervene_action"]` when a person intervened (wrap outside `InterventionWrapper`), else the policy's. The
reward itself is left unchanged: the learner adds the penalty to the grasp critic's reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

CLOSE_ABOVE, OPEN_BELOW = 0.5, -0.5


class GripperPenaltyWrapper(gym.Wrapper):
    """Reports `info["grasp_penalty"]` on every step; nonzero only when the commanded gripper state toggles."""

    def __init__(self, env: gym.Env, penalty: float = -0.02) -> None:
        super().__init__(env)
        task = getattr(env.unwrapped, "task", None)
        if task is not None and not task.layout.gripper:
            raise ValueError(
                f"GripperPenaltyWrapper needs an action with a gripper dimension; {task.name} has none"
            )
        if not np.isfinite(penalty):
            raise ValueError(f"penalty must be finite, got {penalty!r}")
        self.penalty = float(penalty)
        self._initial_closed = bool(getattr(task, "initial_gripper", 0.0) > 0.5)
        self._closed = self._initial_closed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._closed = self._initial_closed
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        executed = info.get("intervene_action", action)
        command = float(np.asarray(executed, dtype=np.float64).reshape(-1)[-1])
        closed = True if command > CLOSE_ABOVE else False if command < OPEN_BELOW else self._closed
        info = {**info, "grasp_penalty": self.penalty if closed != self._closed else 0.0}
        self._closed = closed
        return obs, reward, terminated, truncated, info

"""serl_envs: Gymnasium-registered MuJoCo manipulation tasks for SERL-style robot RL.

`import serl_envs` registers every ID; then `gymnasium.make("SerlFrankaPickCube-v0")`.
"""

import os
import sys

# Headless Linux (no X display) renders through EGL; set before MuJoCo is imported, never overriding a user choice.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"

from serl_envs.registry import register_all, sim_env_ids  # noqa: E402

register_all()

__all__ = ["sim_env_ids"]
__version__ = "0.1.0"

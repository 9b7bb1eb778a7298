"""serl_envs: Gymnasium-registered MuJoCo manipulation tasks for SERL-style robot RL.

`import serl_envs` registers every ID; then `gymnasium.make("SerlFrankaPickCube-v0")`.
"""

from serl_envs.registry import register_all, sim_env_ids

register_all()

__all__ = ["sim_env_ids"]
__version__ = "0.1.0"

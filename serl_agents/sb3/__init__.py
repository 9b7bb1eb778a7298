"""SB3-shaped SERL agents: drop-in where stable-baselines3 algorithms are used.

    from serl_agents.sb3 import SAC, DrQ, BC
    model = SAC("MlpPolicy", env, seed=0)            # DrQ("MultiInputPolicy", vision_env, seed=0)
    model = BC("MlpPolicy", env, demos="demos/pick", seed=0)   # timesteps = gradient steps on the demos
    model.learn(total_timesteps=20_000, callback=..., progress_bar=True)
    action, _ = model.predict(obs, deterministic=True)
    model.save("sac.zip"); model = SAC.load("sac.zip", env=env)

`model.agent` is the underlying `SACAgent` / `DrQAgent` / `BCAgent` (low-level API, pickle-free `agent.save`).
"""

try:
    import stable_baselines3  # noqa: F401
except ImportError as err:  # an optional extra (DESIGN §5)
    raise ImportError("serl_agents.sb3 needs stable-baselines3: pip install 'serl-torch[sb3]'") from err

from serl_agents.sb3.algorithm import SAC, DrQ, SerlOffPolicyAlgorithm  # noqa: E402
from serl_agents.sb3.bc import BC, BCPolicy  # noqa: E402
from serl_agents.sb3.buffer import SB3ReplayBuffer  # noqa: E402
from serl_agents.sb3.policy import AgentPolicy  # noqa: E402

__all__ = ["BC", "SAC", "AgentPolicy", "BCPolicy", "DrQ", "SB3ReplayBuffer", "SerlOffPolicyAlgorithm"]

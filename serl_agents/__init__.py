"""SERL-style agents in plain PyTorch: SAC (state), DrQ (pixels), BC.

from serl_agents import SACAgent
agent = SACAgent.create_states(observations=obs, actions=act, device="cpu")
agent, info = agent.update(batch)
actions = agent.sample_actions(obs)
"""

from serl_agents.batch import UpdateInfo
from serl_agents.bc import BCAgent, BCConfig
from serl_agents.classifier import SuccessClassifier, train_classifier
from serl_agents.drq import DrQAgent, DrQConfig, VisionConfig
from serl_agents.grasp import GraspDrQAgent, GraspDrQConfig, GraspSACAgent, GraspSACConfig
from serl_agents.nets.mlp import MLPConfig
from serl_agents.sac import SACAgent, SACConfig
from serl_agents.vice import VICE, VICEConfig

__all__ = [
    "BCAgent",
    "BCConfig",
    "DrQAgent",
    "DrQConfig",
    "GraspDrQAgent",
    "GraspDrQConfig",
    "GraspSACAgent",
    "GraspSACConfig",
    "MLPConfig",
    "SACAgent",
    "SACConfig",
    "SuccessClassifier",
    "UpdateInfo",
    "VICE",
    "VICEConfig",
    "VisionConfig",
    "train_classifier",
]

SB3_AGENTS = ("BC", "DrQ", "SAC")  # serl_agents.sb3; not in __all__: stable-baselines3 is an extra


def __getattr__(name: str):
    """`from serl_agents import SAC, DrQ, BC` imports `serl_agents.sb3` on first use, so the low-level
    agents work without stable-baselines3 (without it, the ImportError names the [sb3] extra)."""
    if name in SB3_AGENTS:
        from serl_agents import sb3

        return getattr(sb3, name)
    raise AttributeError(f"module 'serl_agents' has no attribute {name!r}")

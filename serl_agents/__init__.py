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
from serl_agents.nets.mlp import MLPConfig
from serl_agents.sac import SACAgent, SACConfig
from serl_agents.vice import VICE, VICEConfig

__all__ = [
    "BCAgent",
    "BCConfig",
    "DrQAgent",
    "DrQConfig",
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

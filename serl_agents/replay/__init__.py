"""Replay storage: a frame-once ring buffer, demo/online mixing, atomic pickle-free save/load."""

from serl_agents.replay.buffer import ReplayBuffer
from serl_agents.replay.mixed import MixedSampler

__all__ = ["MixedSampler", "ReplayBuffer"]

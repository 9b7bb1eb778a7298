"""Versioned policy weights: what the learner publishes and the actors load.

An actor only acts, so it needs the encoder and the actor network (and a grasp agent's grasp critic, which picks
the gripper action), not the other critics, the target networks or the optimizer. Frozen
parameters (a pretrained image encoder) never change: they travel once, when an actor registers, and every later
publication carries only the parameters that train. Arrays are numpy copies (the learner keeps updating its
tensors in place) with the wall-clock time of publication, so an actor can measure the broadcast latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

POLICY_PREFIXES = ("encoder.", "actor.", "grasp_critic.")  # grasp_critic: GraspSACAgent / GraspDrQAgent only


@dataclass(frozen=True)
class Weights:
    """One publication of the policy."""

    version: int  # the learner's update count when published; increases monotonically, across resumes too
    published_at: float  # time.time() at publication (for latency measurements)
    arrays: dict[str, np.ndarray]  # state_dict entries of the encoder and actor (and grasp critic)


def frozen_names(agent: nn.Module) -> set[str]:
    return {name for name, p in agent.named_parameters() if not p.requires_grad}


def policy_weights(agent: nn.Module, version: int, include_frozen: bool) -> Weights:
    """The encoder's, actor's and grasp critic's weights (all of them, or without frozen parameters)."""
    skip = set() if include_frozen else frozen_names(agent)
    arrays = {
        name: tensor.detach().to("cpu", copy=True).numpy()
        for name, tensor in agent.state_dict().items()
        if name.startswith(POLICY_PREFIXES) and name not in skip
    }
    return Weights(version=version, published_at=time.time(), arrays=arrays)


def load_policy_weights(agent: nn.Module, weights: Weights) -> None:
    """Copy published weights into an acting agent built from the same config; unknown names are an error."""
    state = agent.state_dict()
    unknown = sorted(set(weights.arrays) - set(state))
    if unknown:
        raise ValueError(f"weights version {weights.version} has entries {unknown[:5]} this agent does not have; "
                         "were learner and actor built from the same config?")
    with torch.no_grad():
        for name, array in weights.arrays.items():
            target = state[name]
            if tuple(array.shape) != tuple(target.shape):
                raise ValueError(f"weights entry {name!r} has shape {array.shape}, the agent expects "
                                 f"{tuple(target.shape)}")
            target.copy_(torch.from_numpy(np.array(array)))  # a writable copy: Ray's arrays are read-only

"""A tiny async run on the state PickCube, and ways for a test to reach the run's Ray actors by name."""

import time

from serl_agents.config import TrainConfig
from serl_agents.distributed.config import AsyncConfig

ENV = "SerlFrankaPickCube-v0"
TINY = {"critic_network_kwargs": {"hidden_dims": [16, 16]}, "policy_network_kwargs": {"hidden_dims": [16, 16]},
        "critic_ensemble_size": 2}


def tiny_config(out, **overrides) -> TrainConfig:
    values = dict(env=ENV, steps=2000, out=out, batch_size=32, utd_ratio=2, random_steps=300, training_starts=300,
                  eval_every=100_000, eval_episodes=1, video=False, checkpoint_every=100_000, device="cpu",
                  torch_threads=1, agent_kwargs=TINY, expert_demos=0)
    return TrainConfig(**{**values, **overrides})


def two_actors(**overrides) -> AsyncConfig:
    values = dict(num_actors=2, actor_resources={"num_cpus": 0.5}, send_every=25, pull_every=20, publish_every=5,
                  timeout_s=60.0)
    return AsyncConfig(**{**values, **overrides})


def named_actor(ray, prefix: str):
    """The handle of this session's Ray actor whose name starts with `prefix` (waits until it exists)."""
    for _ in range(600):
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
        if names:
            return ray.get_actor(names[0])
        time.sleep(0.2)
    raise TimeoutError(f"no Ray actor named {prefix}*")


def wait_for_step(ray, step: int):
    """Block until the learner has accepted `step` transitions; returns its status and handle."""
    learner = named_actor(ray, "serl-learner-")
    for _ in range(3000):
        status = ray.get(learner.status.remote(), timeout=60)
        if status["accepted"] >= step:
            return status, learner
        time.sleep(0.1)
    raise TimeoutError(f"the learner did not reach step {step}")


def stored_rows(npz_path):
    """(observation, action) rows of the valid transitions of a saved replay buffer, and their count."""
    import numpy as np

    from serl_agents.replay import ReplayBuffer

    buffer = ReplayBuffer.load(npz_path)
    valid = buffer._valid[: buffer._filled]
    rows = np.concatenate([buffer._obs[""][: buffer._filled][valid], buffer._data["actions"][: buffer._filled][valid]],
                          axis=1)
    return rows, len(buffer)

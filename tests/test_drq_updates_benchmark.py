"""benchmarks/drq_updates.py: its rows are the presets it names, and one env step of learner updates runs on them."""

import numpy as np
import torch

from benchmarks.drq_updates import configs, env_step_runner, random_batch
from serl_agents.config import apply_preset


def test_rows_go_from_serl_drq_to_drq_cpu_one_change_at_a_time():
    rows = list(configs().values())
    assert rows[0] == apply_preset("serl-drq", {"env": rows[0].env})
    assert rows[-1] == apply_preset("drq-cpu", {"env": rows[0].env})
    assert [cfg.env_kwargs for cfg in rows[:2]] == [{}, {"image_size": [64, 64]}]
    assert "encoder_kwargs" not in rows[1].agent_kwargs and rows[2].agent_kwargs["encoder_kwargs"]["features"]
    assert not rows[2].agent_kwargs.get("amp") and rows[3].agent_kwargs["amp"]
    assert {(cfg.utd_ratio, cfg.batch_size) for cfg in rows[:4]} == {(4, 256)}


def test_one_env_step_of_updates_changes_the_agent():
    cfg = apply_preset("drq-cpu", {
        "env": "SerlFrankaPickCubeVision-v0", "env_kwargs": {"image_size": [32, 32]}, "batch_size": 4,
        "agent_kwargs": {"critic_network_kwargs": {"hidden_dims": [8]}, "policy_network_kwargs": {"hidden_dims": [8]}},
    })  # fmt: skip
    run = env_step_runner(cfg)
    before = {name: p.detach().clone() for name, p in run.agent.encoder.named_parameters()}
    run(1)  # on the env's real spaces, with bf16 autocast
    after = dict(run.agent.encoder.named_parameters())
    assert any(not torch.equal(before[name], after[name]) for name in before)


def test_random_batch_matches_the_space():
    import gymnasium as gym

    space = gym.spaces.Dict({
        "front": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), "state": gym.spaces.Box(-1, 1, (7,), np.float32)
    })  # fmt: skip
    batch = random_batch(space, 4, 5, np.random.default_rng(0))
    assert batch["observations"]["front"].dtype == torch.uint8 and batch["observations"]["front"].shape == (5, 8, 8, 3)
    assert batch["next_observations"]["state"].shape == (5, 7) and batch["actions"].shape == (5, 4)
    assert not torch.equal(batch["observations"]["front"], batch["next_observations"]["front"])

"""Checkpoints: exact round trips for SAC, DrQ and BC; atomic writes; no arbitrary unpickling."""

from __future__ import annotations

import pickle

import pytest
import torch

import serl_agents.checkpoint as checkpoint
from serl_agents import BCAgent, DrQAgent, SACAgent
from serl_agents.nets.encoders import MultiCameraEncoder, make_encoder

SMALL = {"hidden_dims": [16, 16]}


def state_batch(size: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(size, 5, generator=g),
        "actions": torch.rand(size, 2, generator=g) * 2 - 1,
        "rewards": torch.randn(size, generator=g),
        "masks": torch.ones(size),
        "next_observations": torch.randn(size, 5, generator=g),
    }


def pixel_obs(size: int, g: torch.Generator) -> dict:
    images = {
        k: torch.randint(0, 256, (size, 32, 32, 3), dtype=torch.uint8, generator=g)
        for k in ("front", "wrist")
    }
    return {**images, "state": torch.randn(size, 3, generator=g)}


def pixel_batch(size: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = state_batch(size, seed)
    return {**batch, "observations": pixel_obs(size, g), "next_observations": pixel_obs(size, g)}


def assert_same_behaviour(agent, loaded, batch, obs, **update_kwargs):
    torch.testing.assert_close(
        agent.sample_actions(obs, deterministic=True),
        loaded.sample_actions(obs, deterministic=True),
        rtol=0,
        atol=0,
    )
    torch.testing.assert_close(agent.sample_actions(obs), loaded.sample_actions(obs), rtol=0, atol=0)
    _, info = agent.update(batch, **update_kwargs)
    _, loaded_info = loaded.update(batch, **update_kwargs)
    assert dict(info) == dict(loaded_info)
    for (name, value), (_, loaded_value) in zip(
        agent.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(value, loaded_value), name


def test_sac_round_trip_gives_identical_actions_and_next_update(tmp_path):
    agent = SACAgent.create_states(
        torch.zeros(1, 5), torch.zeros(1, 2), critic_network_kwargs=SMALL, policy_network_kwargs=SMALL,
        critic_ensemble_size=4, lr_warmup_steps=5, seed=3,
    )  # fmt: skip
    for step in range(3):
        agent.update(state_batch(seed=step), utd_ratio=2)
    agent.sample_actions(torch.zeros(1, 5))  # advance the acting stream too
    agent.save(tmp_path / "sac.pt")
    loaded = SACAgent.load(tmp_path / "sac.pt")
    assert loaded.config == agent.config and loaded.step == 3
    assert_same_behaviour(agent, loaded, state_batch(seed=9), torch.randn(3, 5), utd_ratio=2)


def test_drq_round_trip_including_a_custom_encoder(tmp_path):
    g = torch.Generator().manual_seed(0)
    agent = DrQAgent.create_drq(
        pixel_obs(1, g), torch.zeros(1, 2), critic_network_kwargs=SMALL, policy_network_kwargs=SMALL,
        critic_ensemble_size=3, encoder_kwargs={"bottleneck_dim": 32},
    )  # fmt: skip
    agent.update(pixel_batch())
    agent.save(tmp_path / "drq.pt")
    loaded = DrQAgent.load(tmp_path / "drq.pt")
    assert loaded.config.vision.encoder_kwargs == {"bottleneck_dim": 32}
    assert_same_behaviour(agent, loaded, pixel_batch(seed=1), pixel_obs(2, g))

    def cameras():
        return MultiCameraEncoder(
            {k: make_encoder("small", (32, 32, 3), bottleneck_dim=8) for k in ("front", "wrist")}
        )

    custom = DrQAgent.create_drq(
        pixel_obs(1, g), torch.zeros(1, 2), encoder=cameras(), critic_ensemble_size=2
    )
    custom.save(tmp_path / "custom.pt")
    with pytest.raises(ValueError, match=r"custom encoder module: pass encoder=<module>"):
        DrQAgent.load(tmp_path / "custom.pt")
    restored = DrQAgent.load(tmp_path / "custom.pt", encoder=cameras())
    obs = pixel_obs(2, g)
    assert torch.equal(
        custom.sample_actions(obs, deterministic=True), restored.sample_actions(obs, deterministic=True)
    )


def test_bc_round_trip(tmp_path):
    agent = BCAgent.create(torch.zeros(1, 5), torch.zeros(1, 2), policy_network_kwargs=SMALL)
    batch = {"observations": torch.randn(8, 5), "actions": torch.rand(8, 2) * 2 - 1}
    agent.update(batch)
    agent.save(tmp_path / "bc.pt")
    loaded = BCAgent.load(tmp_path / "bc.pt")
    assert_same_behaviour(agent, loaded, batch, torch.randn(3, 5))


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    agent = SACAgent.create_states(torch.zeros(1, 5), torch.zeros(1, 2), critic_network_kwargs=SMALL, seed=0)
    path = tmp_path / "ckpt.pt"
    agent.save(path)
    before = path.read_bytes()
    agent.update(state_batch())

    def crash_mid_write(obj, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind
    assert SACAgent.load(path).step == 0


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": Exploit()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        SACAgent.load(path)


def test_loading_the_wrong_file_or_agent_class(tmp_path):
    agent = BCAgent.create(torch.zeros(1, 5), torch.zeros(1, 2), policy_network_kwargs=SMALL)
    agent.save(tmp_path / "bc.pt")
    with pytest.raises(ValueError, match=r"holds a BCAgent; load it with BCAgent.load"):
        SACAgent.load(tmp_path / "bc.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"is not a serl_agents checkpoint"):
        SACAgent.load(tmp_path / "other.pt")


def test_load_applies_runtime_overrides(tmp_path):
    agent = SACAgent.create_states(torch.zeros(1, 5), torch.zeros(1, 2), critic_network_kwargs=SMALL)
    agent.save(tmp_path / "sac.pt")
    loaded = SACAgent.load(tmp_path / "sac.pt", check_finite=False, max_grad_norm=1.0)
    assert not loaded.config.check_finite and loaded.config.max_grad_norm == 1.0

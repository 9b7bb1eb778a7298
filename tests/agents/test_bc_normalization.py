"""BC's observation normalisation and the `serl train --agent bc` defaults (MSE, standardised states,
decayed lr): statistics from the demos, kept in checkpoints, and why they matter on PickCube's tightly spread states."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serl_agents import BCAgent
from serl_agents.config import DEFAULT_BC_KWARGS, TrainConfig
from serl_agents.train import Trainer, expert_transitions
from serl_envs.record import main_record_demos

STATE_ID = "SerlFrankaPickCube-v0"


@pytest.fixture(scope="module")
def pick_episodes() -> tuple[np.ndarray, np.ndarray]:
    """12 scripted-expert PickCube episodes (100 steps each) as (states, actions)."""
    transitions = expert_transitions(STATE_ID, 12, seed=0)
    states = np.stack([t["observations"] for t in transitions]).astype(np.float32)
    actions = np.stack([t["actions"] for t in transitions]).astype(np.float32)
    return states, actions


def held_out_action_error(states, actions, steps: int, **recipe) -> float:
    """Train on the first 10 episodes, return the mean squared action error on the last 2."""
    train_states, train_actions = torch.tensor(states[:1000]), torch.tensor(actions[:1000])
    agent = BCAgent.create(torch.zeros(1, 10), torch.zeros(1, 4), seed=0, **recipe)
    if agent.config.normalize_observations:
        agent.fit_normalization(train_states)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        index = torch.as_tensor(rng.integers(0, len(train_states), 256))
        agent.update({"observations": train_states[index], "actions": train_actions[index]})
    predicted = np.clip(agent.sample_actions(states[1000:], deterministic=True), -1.0, 1.0)
    return float(np.mean(np.sum((predicted - actions[1000:]) ** 2, axis=-1)))


def test_serl_train_bc_recipe_fits_held_out_demo_actions_far_better_than_serls(pick_episodes):
    """The fix, on unseen demo episodes (same data, same 400 steps): SERL's Gaussian MLE at a constant 3e-4
    (the BCConfig defaults) stays far off the demo actions, its std collapsing on the saturated +-1 action
    dims; the `serl train` recipe (MSE, demo-standardised states, lr 1e-3 decayed) fits them."""
    states, actions = pick_episodes
    serl = held_out_action_error(states, actions, 400, loss="mle", lr=3e-4)
    recipe = held_out_action_error(states, actions, 400, **DEFAULT_BC_KWARGS, lr_decay_steps=400)
    assert recipe < 0.3 * serl, (recipe, serl)


def test_fit_normalization_standardises_states_and_survives_a_checkpoint(pick_episodes, tmp_path):
    states, _ = pick_episodes
    states = states.copy()
    states[:, 3] = 0.25  # a dimension that never varies is only centred, not divided by ~0
    agent = BCAgent.create(torch.zeros(1, 10), torch.zeros(1, 4), normalize_observations=True)
    assert not bool(agent.obs_fitted) and torch.equal(agent.obs_std, torch.ones(10))
    agent.fit_normalization(states)

    expected_std = states.astype(np.float64).std(0)
    expected_std[3] = 1.0
    np.testing.assert_allclose(
        agent.obs_mean.numpy(), states.astype(np.float64).mean(0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(agent.obs_std.numpy(), expected_std, rtol=1e-5)
    normalised = agent._normalized({"state": torch.tensor(states)})["state"]
    np.testing.assert_allclose(normalised.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.delete(normalised.std(0, unbiased=False).numpy(), 3), 1.0, rtol=1e-3)

    agent.save(tmp_path / "agent.pt")
    loaded = BCAgent.load(tmp_path / "agent.pt")
    assert bool(loaded.obs_fitted) and loaded.config.normalize_observations
    assert torch.equal(loaded.obs_mean, agent.obs_mean) and torch.equal(loaded.obs_std, agent.obs_std)
    np.testing.assert_array_equal(
        loaded.sample_actions(states[:5], deterministic=True),
        agent.sample_actions(states[:5], deterministic=True),
    )


def test_first_update_fits_the_statistics_when_not_fitted_before():
    g = torch.Generator().manual_seed(0)
    first = {"observations": 0.5 + 0.1 * torch.randn(64, 6, generator=g), "actions": torch.zeros(64, 2)}
    second = {"observations": torch.randn(64, 6, generator=g), "actions": torch.zeros(64, 2)}
    agent = BCAgent.create(torch.zeros(1, 6), torch.zeros(1, 2), normalize_observations=True)
    agent.update(first)
    torch.testing.assert_close(agent.obs_mean, first["observations"].mean(0))
    agent.update(second)  # later batches leave them alone
    torch.testing.assert_close(agent.obs_mean, first["observations"].mean(0))
    plain = BCAgent.create(torch.zeros(1, 6), torch.zeros(1, 2))  # SERL's BCConfig: no normalisation
    plain.update(first)
    # no statistics at all: its state_dict (and checkpoints) look exactly as before the option existed
    assert not any(key.startswith("obs_") for key in plain.state_dict())


def test_bad_fit_normalization_input_is_rejected_and_changes_nothing():
    agent = BCAgent.create(torch.zeros(1, 6), torch.zeros(1, 2), normalize_observations=True)
    agent.fit_normalization(torch.arange(12.0).reshape(2, 6))
    mean, std = agent.obs_mean.clone(), agent.obs_std.clone()
    with pytest.raises(ValueError, match=r"^states must be \(N, 6\) with N >= 1, got shape \(4, 5\)$"):
        agent.fit_normalization(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"^states must be \(N, 6\) with N >= 1, got shape \(6,\)$"):
        agent.fit_normalization(np.zeros(6))
    bad = np.zeros((3, 6))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^states contain NaN or inf$"):
        agent.fit_normalization(bad)
    assert torch.equal(agent.obs_mean, mean) and torch.equal(agent.obs_std, std)
    plain = BCAgent.create(torch.zeros(1, 6), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^fit_normalization needs normalize_observations=True"):
        plain.fit_normalization(np.zeros((3, 6)))


def test_serl_train_bc_defaults_and_overrides():
    cfg = TrainConfig(agent="bc", steps=3000)
    assert cfg.agent_kwargs == {
        "loss": "mse",
        "lr": 1e-3,
        "normalize_observations": True,
        "lr_decay_steps": 3000,
    }
    serl = {"loss": "mle", "lr": 3e-4, "lr_decay_steps": 0, "normalize_observations": False}
    assert TrainConfig(agent="bc", agent_kwargs=serl).agent_kwargs == serl
    assert "loss" not in TrainConfig(agent="sac").agent_kwargs


def test_trainer_fits_bc_normalization_on_every_demo_state(tmp_path, monkeypatch):
    monkeypatch.setenv("SERL_NO_PROGRESS", "1")
    demos = tmp_path / "demos"
    assert (
        main_record_demos(["--env", STATE_ID, "--device", "expert", "--episodes", "2", "--out", str(demos)])
        == 0
    )
    from serl_envs.demos import load_demos

    states = np.stack([t["observations"] for t in load_demos(demos)]).astype(np.float64)
    trainer = Trainer(TrainConfig(agent="bc", demos=demos, steps=2, out=tmp_path / "run", video=False))
    try:
        np.testing.assert_allclose(trainer.agent.obs_mean.numpy(), states.mean(0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(trainer.agent.obs_std.numpy(), states.std(0), rtol=1e-5)
    finally:
        trainer.env.close()
        trainer.eval_env.close()

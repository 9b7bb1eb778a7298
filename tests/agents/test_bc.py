"""BCAgent: Gaussian (MLE) and deterministic (MSE) cloning on states and pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serl_agents import BCAgent

OBS_DIM, ACT_DIM = 6, 3
SMALL = {"hidden_dims": [64, 64]}


def demo_batch(size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """Demo actions are a fixed nonlinear function of the state, inside (-1, 1)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(size, OBS_DIM, generator=g)
    actions = 0.8 * torch.tanh(obs[:, :ACT_DIM] - 0.5 * obs[:, ACT_DIM:])
    return {"observations": obs, "actions": actions}


@pytest.mark.parametrize("loss", ["mle", "mse"])
def test_state_bc_fits_demo_actions(loss):
    agent = BCAgent.create(
        torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM), policy_network_kwargs=SMALL, loss=loss, lr=3e-3
    )
    batch = demo_batch()
    _, first = agent.update(batch)
    for _ in range(150):
        _, info = agent.update(batch)
    assert info["mse"] < first["mse"] / 10
    if loss == "mle":
        assert info["actor_loss"] < first["actor_loss"]
    predicted = agent.sample_actions(batch["observations"].numpy(), deterministic=True)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (64, ACT_DIM)
    assert np.mean(np.sum((predicted - batch["actions"].numpy()) ** 2, axis=-1)) == pytest.approx(
        info["mse"], rel=0.5
    )


def test_serl_bc_defaults():
    agent = BCAgent.create(torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM))
    cfg = agent.config
    assert cfg.loss == "mle" and not cfg.tanh_squash and cfg.std_parameterization == "exp"
    assert cfg.policy_network.hidden_dims == (256, 256) and not cfg.policy_network.use_layer_norm
    assert cfg.policy_network.activations == "tanh" and cfg.vision is None


def test_pixel_bc_updates_on_two_cameras_with_only_observations_and_actions():
    g = torch.Generator().manual_seed(0)

    def obs(size):
        images = {
            k: torch.randint(0, 256, (size, 32, 32, 3), dtype=torch.uint8, generator=g) for k in ("a", "b")
        }
        return {**images, "state": torch.randn(size, 4, generator=g)}

    def make():
        return BCAgent.create(obs(1), torch.zeros(1, 2), image_keys=("a", "b"), policy_network_kwargs=SMALL)

    agent, twin = make(), make()
    assert agent.config.vision.image_keys == ("a", "b") and agent.config.vision.augment_pad == 4
    batch = {"observations": obs(8), "actions": torch.rand(8, 2, generator=g) * 2 - 1}
    _, info = agent.update(batch)
    _, twin_info = twin.update(batch)
    assert np.isfinite(info["actor_loss"]) and np.isfinite(info["mean_std"])
    assert dict(info) == dict(twin_info)  # same seed: same augmentation shifts and encoder dropout
    assert agent.sample_actions(obs(3)).shape == (3, 2)


def test_bad_bc_batches_and_options():
    agent = BCAgent.create(torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM))
    with pytest.raises(ValueError, match=r"batch is missing key 'actions'"):
        agent.update({"observations": torch.zeros(4, OBS_DIM)})
    with pytest.raises(ValueError, match=r"batch\['actions'\] contains NaN or inf"):
        agent.update(
            {"observations": torch.zeros(4, OBS_DIM), "actions": torch.full((4, ACT_DIM), float("nan"))}
        )
    with pytest.raises(ValueError, match=r"loss must be one of \('mle', 'mse'\)"):
        BCAgent.create(torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM), loss="huber")
    with pytest.raises(ValueError, match=r"encoder options need image_keys"):
        BCAgent.create(torch.zeros(1, OBS_DIM), torch.zeros(1, ACT_DIM), augment_pad=2)

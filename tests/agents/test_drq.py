"""DrQAgent: two-camera dict observations, augmentation, the stop-gradient actor, custom encoders, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serl_agents import DrQAgent
from serl_agents.batch import prepare_batch
from serl_agents.nets.encoders import MultiCameraEncoder, make_encoder

IMAGE = (32, 32, 3)
CAMERAS = ("front", "wrist")
STATE_DIM, ACT_DIM = 5, 4
SMALL = {"hidden_dims": [32, 32]}


def make_obs(size: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    obs = {key: torch.randint(0, 256, (size, *IMAGE), dtype=torch.uint8, generator=g) for key in CAMERAS}
    obs["state"] = torch.randn(size, STATE_DIM, generator=g)
    return obs


def make_batch(size: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": make_obs(size, g),
        "actions": torch.rand(size, ACT_DIM, generator=g) * 2 - 1,
        "rewards": torch.randn(size, generator=g),
        "masks": torch.ones(size),
        "next_observations": make_obs(size, g),
    }


def make_agent(seed: int = 0, **kwargs) -> DrQAgent:
    return DrQAgent.create_drq(
        make_obs(1, torch.Generator().manual_seed(0)),
        torch.zeros(1, ACT_DIM),
        image_keys=CAMERAS,
        encoder=kwargs.pop("encoder", "small"),
        critic_network_kwargs=SMALL,
        policy_network_kwargs=SMALL,
        critic_ensemble_size=kwargs.pop("critic_ensemble_size", 4),
        seed=seed,
        **kwargs,
    )


def test_update_and_act_on_two_cameras_with_serl_defaults():
    agent = make_agent()
    assert agent.config.discount == 0.96 and agent.config.critic_subsample_size == 2
    assert agent.config.vision.augment_pad == 4 and agent.config.vision.encoder == "small"
    # two 256-d camera features + the 64-d proprio embedding
    assert agent.encoder.output_dim == 2 * 256 + 64
    agent, info = agent.update(make_batch(8), utd_ratio=2)
    assert np.isfinite([info["critic_loss"], info["actor_loss"], info["temperature"]]).all()
    obs = {key: value[0].numpy() for key, value in make_obs(1, torch.Generator()).items()}
    action = agent.sample_actions(obs)
    assert action.shape == (ACT_DIM,) and np.all(np.abs(action) <= 1)


def test_the_actor_loss_does_not_reach_the_encoder():
    """Encoder gradients of the full update (critic + actor + temperature) equal the critic loss's alone."""
    agent = make_agent()
    batch = agent._augment(prepare_batch(make_batch(8), agent.obs_spec, ACT_DIM, agent.device))
    agent.eval()  # no dropout, so both passes see the same network
    noise = torch.randn(2, 8, ACT_DIM)
    members = torch.tensor([0, 1])
    encoder_grads = {}
    for full in (False, True):
        agent.optimizer.zero_grad(set_to_none=True)
        loss, _ = agent._compute_losses(batch, noise, members, full)
        loss.backward()
        encoder_grads[full] = [p.grad.clone() for p in agent.encoder.parameters() if p.grad is not None]
        if full:
            assert any(p.grad is not None for p in agent.actor.parameters())
    assert len(encoder_grads[False]) == len(list(agent.encoder.parameters())) > 0
    for critic_only, full in zip(encoder_grads[False], encoder_grads[True], strict=True):
        torch.testing.assert_close(full, critic_only, rtol=0, atol=0)


def test_random_shift_is_applied_to_observations_and_next_observations_only_in_training():
    agent = make_agent()
    batch = prepare_batch(make_batch(16), agent.obs_spec, ACT_DIM, agent.device)
    augmented = agent._augment(batch)
    for key in ("observations", "next_observations"):
        for camera in CAMERAS:
            shifted = augmented[key][camera]
            assert shifted.shape == batch[key][camera].shape and shifted.dtype == torch.uint8
            assert not torch.equal(shifted, batch[key][camera])
        assert torch.equal(augmented[key]["state"], batch[key]["state"])
    plain = make_agent(augment_pad=0)
    assert plain._augment(batch) is batch


def test_custom_encoder_module_and_frozen_named_encoder():
    cameras = MultiCameraEncoder({key: make_encoder("small", IMAGE, bottleneck_dim=16) for key in CAMERAS})
    agent = make_agent(encoder=cameras, use_proprio=False)
    assert agent.config.vision.encoder == "custom" and agent.encoder.output_dim == 32
    assert agent.obs_spec.state_dim is None
    agent.update(make_batch(4))
    frozen = make_agent(encoder_kwargs={"freeze": True})
    frozen_backbone = [p for p in frozen.encoder.parameters() if not p.requires_grad]
    assert frozen_backbone and all(
        all(p is not q for q in frozen.optimizer.param_groups[0]["params"]) for p in frozen_backbone
    )


def test_same_seed_gives_identical_training_despite_encoder_dropout():
    def train(seed: int) -> list[float]:
        agent = make_agent(seed=seed)
        torch.manual_seed(1234 + seed)  # the global RNG must not matter
        return [agent.update(make_batch(8, seed=step))[1]["critic_loss"] for step in range(3)]

    assert train(0) == train(0)
    assert train(0) != train(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["observations"].pop("wrist"), r"batch\['observations'\] is missing key 'wrist'"),
        (lambda b: b["next_observations"].update(front=torch.zeros(8, 16, 16, 3, dtype=torch.uint8)),
         r"batch\['next_observations'\]\['front'\] has shape \(8, 16, 16, 3\), expected \(32, 32, 3\)"),
        (lambda b: b["observations"].update(front=torch.zeros(8, *IMAGE)),
         r"batch\['observations'\]\['front'\] must be uint8 images, got dtype torch.float32"),
        (lambda b: b["observations"].__setitem__("state", torch.full((8, STATE_DIM), float("nan"))),
         r"batch\['observations'\]\['state'\] contains NaN or inf"),
    ],
)  # fmt: skip
def test_bad_pixel_batches_raise_value_errors_naming_the_key(change, message):
    agent = make_agent()
    batch = make_batch(8)
    change(batch)
    with pytest.raises(ValueError, match=message):
        agent.update(batch)


def test_bad_create_arguments():
    obs = make_obs(1, torch.Generator())
    with pytest.raises(ValueError, match=r"image key 'side' is not in the example observations"):
        DrQAgent.create_drq(obs, torch.zeros(1, 2), image_keys=("front", "side"))
    with pytest.raises(ValueError, match=r"encoder must be one of \['small', 'resnet10', 'custom'\]"):
        DrQAgent.create_drq(obs, torch.zeros(1, 2), encoder="resnet50")
    with pytest.raises(ValueError, match=r"pixel agents need dict observations"):
        DrQAgent.create_drq(torch.zeros(1, 5), torch.zeros(1, 2))

"""SACAgent: the SERL-shaped API, learning on a fixed batch, REDQ subsampling, temperature, UTD, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from serl_agents import SACAgent, SACConfig
from serl_agents.nets.ensemble import EnsembleMLP
from serl_agents.nets.mlp import ACTIVATIONS, MLP, MLPConfig
from serl_agents.sac import apply_gradients, critic_loss, lr_scale

OBS_DIM, ACT_DIM = 6, 3
SMALL = {"hidden_dims": [32, 32]}


def make_batch(size: int = 32, seed: int = 0, mask: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(size, OBS_DIM, generator=g),
        "actions": torch.rand(size, ACT_DIM, generator=g) * 2 - 1,
        "rewards": torch.randn(size, generator=g),
        "masks": torch.full((size,), mask),
        "next_observations": torch.randn(size, OBS_DIM, generator=g),
    }


def make_agent(seed: int = 0, **kwargs) -> SACAgent:
    return SACAgent.create_states(
        observations=torch.zeros(1, OBS_DIM),
        actions=torch.zeros(1, ACT_DIM),
        critic_network_kwargs=SMALL,
        policy_network_kwargs=SMALL,
        seed=seed,
        **kwargs,
    )


def test_serl_snippet_runs_as_written():
    agent = SACAgent.create_states(
        observations=torch.randn(1, 10),
        actions=torch.randn(1, 4),
        critic_network_kwargs={"hidden_dims": [256, 256]},
        policy_network_kwargs={"hidden_dims": [256, 256]},
        device="cpu",
    )
    batch = {
        "observations": torch.randn(8, 10),
        "actions": torch.rand(8, 4) * 2 - 1,
        "rewards": torch.randn(8),
        "masks": torch.ones(8),
        "next_observations": torch.randn(8, 10),
    }
    agent, info = agent.update(batch)
    for key in ("critic_loss", "actor_loss", "temperature"):
        assert isinstance(info[key], float) and np.isfinite(info[key])
    # SERL's defaults: 10 critics, 2 subsampled, tanh + LayerNorm, target entropy -|A|/2
    assert agent.config.critic_ensemble_size == 10 and agent.config.critic_subsample_size == 2
    assert agent.config.target_entropy == -2.0
    assert agent.config.critic_network == MLPConfig(
        hidden_dims=(256, 256), activations="tanh", use_layer_norm=True
    )

    actions = agent.sample_actions(np.zeros((5, 10), np.float32))
    assert isinstance(actions, np.ndarray) and actions.shape == (5, 4) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 1.0)
    single = agent.sample_actions(np.zeros(10, np.float32), deterministic=True)
    assert single.shape == (4,)
    tensor_actions = agent.sample_actions(torch.zeros(2, 10), deterministic=True)
    assert isinstance(tensor_actions, torch.Tensor) and tensor_actions.shape == (2, 4)
    dict_actions = agent.sample_actions({"state": torch.zeros(2, 10)}, deterministic=True)
    torch.testing.assert_close(dict_actions, tensor_actions)


def test_numpy_float64_batches_are_accepted():
    agent = make_agent()
    batch = {key: value.double().numpy() for key, value in make_batch(8).items()}
    _, info = agent.update(batch)
    assert np.isfinite(info["critic_loss"])


def test_critic_overfits_a_fixed_batch():
    agent = make_agent(critic_lr=3e-3)
    batch = make_batch(64, mask=0.0)  # terminal transitions: the target is the reward itself
    _, first = agent.update(batch)
    for _ in range(80):
        _, info = agent.update(batch)
    assert info["critic_loss"] < first["critic_loss"] / 10


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layer_norm", [True, False])
def test_ensemble_is_one_batched_mlp_equal_to_independent_members(activation, layer_norm):
    config = MLPConfig(hidden_dims=(8, 8), activations=activation, use_layer_norm=layer_norm)
    ensemble = EnsembleMLP(4, 5, 1, config, torch.Generator().manual_seed(0))
    with torch.no_grad():  # distinct LayerNorm affines per member, so the check covers them
        for scale in ensemble.norm_scales:
            scale.uniform_(0.5, 1.5)
    x = torch.randn(7, 5)
    out = ensemble(x)
    assert out.shape == (4, 7, 1)
    for member in range(4):
        mlp = MLP(5, config)
        head = torch.nn.Linear(8, 1)
        linears = [m for m in mlp.net if isinstance(m, torch.nn.Linear)] + [head]
        norms = [m for m in mlp.net if isinstance(m, torch.nn.LayerNorm)]
        with torch.no_grad():
            for linear, weight, bias in zip(linears, ensemble.weights, ensemble.biases, strict=True):
                linear.weight.copy_(weight[member].T)
                linear.bias.copy_(bias[member, 0])
            for norm, scale, shift in zip(norms, ensemble.norm_scales, ensemble.norm_shifts, strict=True):
                norm.weight.copy_(scale[member, 0])
                norm.bias.copy_(shift[member, 0])
        torch.testing.assert_close(out[member], head(mlp(x)))
    members = torch.tensor([3, 1])
    torch.testing.assert_close(ensemble(x, members=members), out[members])


def test_target_is_min_over_the_chosen_subset():
    torch.manual_seed(0)
    agent = make_agent(critic_ensemble_size=5, critic_subsample_size=2, discount=0.9)
    batch = make_batch(16)
    features, next_features = batch["observations"], batch["next_observations"]
    noise = torch.randn(16, ACT_DIM)
    members = torch.tensor([4, 1])
    temperature = torch.tensor(0.1)
    _, info = critic_loss(
        agent.critic, agent.target_critic, agent.actor, features, next_features, batch["actions"],
        batch["rewards"], batch["masks"], temperature, noise, members, 0.9, backup_entropy=False,
    )  # fmt: skip
    with torch.no_grad():
        next_actions, _ = agent.actor(next_features).rsample(noise)
        all_target_qs = agent.target_critic(next_features, next_actions)  # (5, B)
        expected = batch["rewards"] + 0.9 * all_target_qs[[4, 1]].min(dim=0).values
        not_expected = batch["rewards"] + 0.9 * all_target_qs.min(dim=0).values
    torch.testing.assert_close(info["target_qs"], expected.mean())
    assert not torch.allclose(info["target_qs"], not_expected.mean())


def test_update_draws_m_distinct_of_n_critics_for_the_target():
    agent = make_agent(critic_ensemble_size=6, critic_subsample_size=2)
    seen: list[tuple[int, ...]] = []
    forward = agent.target_critic.forward

    def recording_forward(features, actions, members=None, detach_params=False):
        seen.append(tuple(members.tolist()))
        return forward(features, actions, members=members, detach_params=detach_params)

    agent.target_critic.forward = recording_forward
    batch = make_batch(8)
    for _ in range(20):
        agent.update(batch)
    assert len(seen) == 20
    assert all(
        len(chosen) == 2 and len(set(chosen)) == 2 and all(0 <= i < 6 for i in chosen) for chosen in seen
    )
    assert len(set(seen)) > 3  # a fresh random subset per update


def test_temperature_moves_toward_the_target_entropy():
    batch = make_batch(32)
    raised = make_agent(target_entropy=10.0, temperature_lr=1e-2)  # unreachably high target
    lowered = make_agent(target_entropy=-100.0, temperature_lr=1e-2)  # far below any entropy
    start = raised.config.temperature_init
    for _ in range(10):
        _, up = raised.update(batch)
        _, down = lowered.update(batch)
    assert up["temperature"] > start * 1.05
    assert down["temperature"] < start / 1.05


def test_each_loss_trains_only_its_own_parameters():
    """The full update's critic gradient equals the critic loss's alone (actor/temperature do not leak)."""
    agent = make_agent(critic_ensemble_size=3)
    batch = {**make_batch(8), "observations": {"state": make_batch(8)["observations"]}}
    batch["next_observations"] = {"state": batch["next_observations"]}
    noise = torch.randn(2, 8, ACT_DIM)
    members = torch.tensor([0, 2])
    grads = {}
    for full in (False, True):
        agent.optimizer.zero_grad(set_to_none=True)
        loss, _ = agent._compute_losses(batch, noise, members, full)
        loss.backward()
        grads[full] = {name: p.grad.clone() for name, p in agent.named_parameters() if p.grad is not None}
    critic_names = {name for name, _ in agent.critic.named_parameters()}
    assert set(grads[False]) == {f"critic.{name}" for name in critic_names}
    for name, grad in grads[False].items():
        torch.testing.assert_close(grads[True][name], grad, rtol=0, atol=0)
    assert "log_temperature" in grads[True] and any(name.startswith("actor.") for name in grads[True])


def test_high_utd_does_critic_only_updates_then_one_full_update():
    agent = make_agent()
    agent.update(make_batch(12), utd_ratio=3)
    critic_steps = agent.optimizer.state[agent.optimizer.param_groups[0]["params"][0]]["step"]
    actor_steps = agent.optimizer.state[agent.optimizer.param_groups[1]["params"][0]]["step"]
    assert (int(critic_steps), int(actor_steps)) == (3, 1)
    with pytest.raises(ValueError, match="batch size 10 is not divisible by utd_ratio=4"):
        agent.update(make_batch(10), utd_ratio=4)
    with pytest.raises(ValueError, match="utd_ratio must be a positive int"):
        agent.update(make_batch(10), utd_ratio=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("rewards"), r"batch is missing key 'rewards'"),
        (lambda b: b.update(actions=torch.zeros(32, ACT_DIM + 1)), r"batch\['actions'\] has shape \(32, 4\), expected \(32, 3\)"),
        (lambda b: b.update(rewards=torch.zeros(32, 1)), r"batch\['rewards'\] has shape \(32, 1\), expected \(32,\)"),
        (lambda b: b["rewards"].__setitem__(3, float("nan")), r"batch\['rewards'\] contains NaN or inf"),
        (lambda b: b["next_observations"].__setitem__((0, 0), float("inf")), r"batch\['next_observations'\]\['state'\] contains NaN or inf"),
        (lambda b: b.update(observations=torch.zeros(32, OBS_DIM + 2)), r"batch\['observations'\]\['state'\] has shape \(32, 8\), expected \(6,\)"),
        (lambda b: b.update(masks=torch.ones(31)), r"batch\['masks'\] has shape \(31,\), expected \(32,\)"),
        (lambda b: b.update(observations={"pixels": torch.zeros(32, 6)}), r"batch\['observations'\] is missing key 'state'"),
        (lambda b: b.update(actions=[[0.0] * ACT_DIM] * 32), r"batch\['actions'\] must be a torch.Tensor or numpy array, got list"),
    ],
)  # fmt: skip
def test_bad_batches_raise_a_value_error_naming_the_key(change, message):
    agent = make_agent()
    batch = make_batch(32)
    change(batch)
    with pytest.raises(ValueError, match=message):
        agent.update(batch)


def test_bad_options_raise_value_errors():
    with pytest.raises(ValueError, match=r"unknown SACConfig options \['critic_ensemble'\]"):
        make_agent(critic_ensemble=3)
    with pytest.raises(ValueError, match=r"critic_subsample_size must be in \[1, critic_ensemble_size=2\]"):
        SACConfig(critic_ensemble_size=2, critic_subsample_size=3)
    with pytest.raises(ValueError, match=r"unknown network kwargs \['hidden'\]"):
        SACAgent.create_states(torch.zeros(1, 3), torch.zeros(1, 2), critic_network_kwargs={"hidden": [3]})
    with pytest.raises(ValueError, match=r"activations must be one of"):
        MLPConfig(activations="swishy")


def test_same_seed_gives_identical_training_and_other_seeds_differ():
    def train(seed: int) -> tuple[list[float], dict[str, torch.Tensor]]:
        agent = make_agent(seed=seed)
        losses = []
        for step in range(4):
            _, info = agent.update(make_batch(16, seed=step), utd_ratio=2)
            losses.append(info["critic_loss"])
        return losses, {name: p.detach().clone() for name, p in agent.state_dict().items()}

    losses_a, params_a = train(0)
    losses_b, params_b = train(0)
    losses_c, _ = train(1)
    assert losses_a == losses_b
    for name, value in params_a.items():
        assert torch.equal(value, params_b[name]), name
    assert losses_a != losses_c


def test_learning_rate_warmup_and_cosine_decay():
    assert lr_scale(0, 4, 0) == 0.25 and lr_scale(3, 4, 0) == 1.0
    assert (
        lr_scale(4, 4, 10) == 1.0 and lr_scale(9, 4, 10) == pytest.approx(0.5) and lr_scale(20, 4, 10) == 0.0
    )
    agent = make_agent(lr_warmup_steps=10, critic_lr=1e-3)
    agent.update(make_batch(8))
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_gradient_clipping_bounds_each_group_norm():
    layer = torch.nn.Linear(4, 4)
    optimizer = torch.optim.Adam([{"params": list(layer.parameters())}])
    loss = 1e3 * layer(torch.randn(16, 4)).square().sum()
    apply_gradients(loss, optimizer, None, max_grad_norm=0.5)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in layer.parameters()]))
    assert norm == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("squash", [True, False])
def test_policy_log_probs_match_torch_distributions(squash):
    from torch.distributions import Independent, Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform

    from serl_agents.nets.policy import ActionDistribution

    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(64, 3, generator=g), torch.rand(64, 3, generator=g) + 0.1
    dist = ActionDistribution(mean, std, tanh_squash=squash)
    actions, log_probs = dist.rsample(torch.randn(64, 3, generator=g))
    reference = Independent(Normal(mean, std), 1)
    if squash:
        reference = TransformedDistribution(reference, TanhTransform())
        actions = actions.clamp(-1 + 1e-5, 1 - 1e-5)  # TanhTransform inverts with atanh, as log_prob does
    torch.testing.assert_close(log_probs, reference.log_prob(actions), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(dist.log_prob(actions), reference.log_prob(actions), rtol=1e-4, atol=1e-3)


def per_critic_q(ensemble: EnsembleMLP, x: torch.Tensor, member: int) -> torch.Tensor:
    """Critic `member` of a stacked ensemble evaluated on its own, with torch.nn.functional layers."""
    h = x
    last = len(ensemble.weights) - 1
    for i, (weight, bias) in enumerate(zip(ensemble.weights, ensemble.biases, strict=True)):
        h = torch.nn.functional.linear(h, weight[member].T, bias[member, 0])
        if i < last:
            width = h.shape[-1]
            scale, shift = ensemble.norm_scales[i][member, 0], ensemble.norm_shifts[i][member, 0]
            h = torch.tanh(torch.nn.functional.layer_norm(h, (width,), scale, shift))
    return h.squeeze(-1)


def test_losses_and_gradients_match_a_per_critic_loop():
    """The vectorized update computes the same losses and gradients as SAC written
    with a Python loop over 10 critics: critic MSE over all, target = min of the 2 chosen target critics,
    actor loss on the mean of all critics (critic weights untrained by it), temperature loss."""
    agent = make_agent(critic_ensemble_size=10, critic_subsample_size=2, discount=0.9)
    with torch.no_grad():  # distinct LayerNorm affines and targets, so a mix-up of members shows
        for param in [*agent.critic.parameters(), *agent.target_critic.parameters()]:
            param.add_(0.1 * torch.randn_like(param))
    batch = make_batch(24, mask=0.5)
    obs, next_obs = batch["observations"], batch["next_observations"]
    noise = torch.randn(2, 24, ACT_DIM, generator=torch.Generator().manual_seed(1))
    members = torch.tensor([7, 2])

    loss, info = agent._compute_losses(prepare(agent, batch), noise, members, full=True)
    params = {name: p for name, p in agent.named_parameters() if p.requires_grad}
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))

    temperature = agent.log_temperature.exp()
    with torch.no_grad():
        next_actions, _ = agent.actor(next_obs).rsample(noise[0])
        next_input = torch.cat([next_obs, next_actions], dim=-1)
        target_q = torch.stack([per_critic_q(agent.target_critic.net, next_input, m) for m in (7, 2)])
        target = batch["rewards"] + 0.9 * batch["masks"] * target_q.min(dim=0).values
    critic_input = torch.cat([obs, batch["actions"]], dim=-1)
    critic_losses = [
        (per_critic_q(agent.critic.net, critic_input, m) - target).square().mean() for m in range(10)
    ]
    critic_loss = torch.stack(critic_losses).mean()
    actions, log_probs = agent.actor(obs).rsample(noise[1])
    frozen = copy.deepcopy(agent.critic.net).requires_grad_(False)
    actor_input = torch.cat([obs, actions], dim=-1)
    q = torch.stack([per_critic_q(frozen, actor_input, m) for m in range(10)]).mean(dim=0)
    actor_loss = (temperature.detach() * log_probs - q).mean()
    temperature_loss = temperature * (-log_probs.mean().detach() - agent.config.target_entropy)
    reference = critic_loss + actor_loss + temperature_loss
    reference_grads = torch.autograd.grad(reference, list(params.values()), allow_unused=True)

    torch.testing.assert_close(info["critic_loss"], critic_loss)
    torch.testing.assert_close(info["actor_loss"], actor_loss)
    torch.testing.assert_close(info["target_qs"], target.mean())
    torch.testing.assert_close(loss, reference)
    for name, want in zip(params, reference_grads, strict=True):
        torch.testing.assert_close(grads[name], want if want is not None else torch.zeros_like(grads[name]))


def prepare(agent: SACAgent, batch: dict[str, torch.Tensor]) -> dict:
    from serl_agents.batch import prepare_batch

    return prepare_batch(batch, agent.obs_spec, agent.action_dim, agent.device, check_finite=True)

"""HIL-SERL's learned gripper: Double DQN target, grasp penalty, action assembly, hold wrapper, learning, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import serl_envs  # noqa: F401  (registers the Serl* IDs)
from serl_agents import DrQAgent
from serl_agents.grasp import (
    CLOSE,
    OPEN,
    STAY,
    GraspDrQAgent,
    GraspSACAgent,
    GripperHoldWrapper,
    assemble_action,
    double_dqn_target,
    grasp_choice,
)
from serl_envs.wrappers import GripperPenaltyWrapper

OBS_DIM, ARM_DIM = 6, 3
SMALL = {"hidden_dims": [32, 32]}


def make_agent(seed: int = 0, obs_dim: int = OBS_DIM, arm_dim: int = ARM_DIM, **kwargs) -> GraspSACAgent:
    return GraspSACAgent.create_states(
        torch.zeros(1, obs_dim), torch.zeros(1, arm_dim + 1), critic_network_kwargs=SMALL,
        policy_network_kwargs=SMALL, grasp_critic_network_kwargs=SMALL, seed=seed,
        critic_ensemble_size=2, critic_subsample_size=None, **kwargs,
    )  # fmt: skip


def make_batch(size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gripper = torch.randint(-1, 2, (size, 1), generator=g).float()
    return {
        "observations": torch.randn(size, OBS_DIM, generator=g),
        "actions": torch.cat([torch.rand(size, ARM_DIM, generator=g) * 2 - 1, gripper], dim=1),
        "rewards": torch.randn(size, generator=g),
        "masks": torch.ones(size),
        "next_observations": torch.randn(size, OBS_DIM, generator=g),
        "grasp_penalty": -0.02 * (torch.rand(size, generator=g) < 0.3).float(),
    }


class ConstantQ(torch.nn.Module):
    """Q-values that ignore the features: lets a test choose where online and target nets disagree."""

    def __init__(self, values: list[float]):
        super().__init__()
        self.values = torch.tensor(values)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.values.expand(features.shape[0], -1)


def set_constant_q(critic: torch.nn.Module, values: list[float]) -> None:
    """Zero the head's weights so the critic outputs `values` for every input."""
    with torch.no_grad():
        critic.head.weight.zero_()
        critic.head.bias.copy_(torch.tensor(values))


# --------------------------------------------------------------------------------------- Double DQN


def test_double_dqn_target_picks_with_the_online_net_and_values_with_the_target_net():
    online, target = ConstantQ([1.0, 5.0, 2.0]), ConstantQ([10.0, -3.0, 7.0])
    rewards, masks = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])
    y = double_dqn_target(online, target, torch.zeros(2, 4), rewards, masks, discount=0.9)
    # online argmax = stay (1); target values it at -3. DQN's max over the target (10) or the online
    # net's own value (5) would give different numbers.
    torch.testing.assert_close(y, torch.tensor([0.5 + 0.9 * -3.0, 0.5]))


def test_agent_update_uses_the_double_dqn_target():
    agent = make_agent(discount=0.5)
    set_constant_q(agent.grasp_critic, [1.0, 5.0, 2.0])
    set_constant_q(agent.target_grasp_critic, [10.0, -3.0, 7.0])
    batch = make_batch(16)
    _, info = agent.update(batch)
    expected = (batch["rewards"] + batch["grasp_penalty"]).mean() + 0.5 * -3.0
    assert info["target_grasp_qs"] == pytest.approx(float(expected), abs=1e-5)
    assert info["predicted_grasp_qs"] == pytest.approx(
        float(torch.tensor([1.0, 5.0, 2.0])[grasp_choice(batch["actions"][:, -1])].mean()), abs=1e-5
    )


# ------------------------------------------------------------------------------ penalty and the env


class CommandRecorder(gym.Wrapper):
    """Records the gripper value the env itself receives."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.grippers: list[float] = []

    def step(self, action):
        self.grippers.append(float(action[-1]))
        return self.env.step(action)


def test_grasp_reward_gets_the_penalty_only_when_the_gripper_toggles():
    recorder = CommandRecorder(gym.make("SerlFrankaPickCube-v0"))
    env = GripperHoldWrapper(GripperPenaltyWrapper(recorder, penalty=-0.02))
    agent = make_agent(obs_dim=10, arm_dim=3, discount=0.0)
    # the gripper starts open
    choices = [STAY, OPEN, CLOSE, STAY, CLOSE, STAY, OPEN, STAY, OPEN, CLOSE, OPEN, STAY]
    toggles = [0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0]
    executed = [-1, -1, 1, 1, 1, 1, -1, -1, -1, 1, -1, -1]
    obs, _ = env.reset(seed=0)
    rows = []
    for choice in choices:
        action = assemble_action(torch.zeros(1, 3), torch.tensor([choice]))[0].numpy()
        next_obs, reward, terminated, _, info = env.step(action)
        rows.append((obs, action, reward, 1.0 - terminated, next_obs, info["grasp_penalty"]))
        obs = next_obs
    batch = {
        key: np.stack([row[i] for row in rows]).astype(np.float32)
        for i, key in enumerate(
            ["observations", "actions", "rewards", "masks", "next_observations", "grasp_penalty"]
        )
    }
    assert recorder.grippers == executed  # "stay" repeated the last command; the env saw only -1 / +1
    np.testing.assert_array_equal(batch["grasp_penalty"], -0.02 * np.array(toggles, np.float32))

    seen = agent.grasp_batch(batch)
    assert seen["grasp_actions"].tolist() == choices
    added = (seen["grasp_rewards"] - torch.as_tensor(batch["rewards"])).numpy()
    np.testing.assert_allclose(added, -0.02 * np.array(toggles), atol=1e-7)
    # discount 0: the grasp critic's TD target is exactly that reward
    _, info = agent.update(batch)
    assert info["target_grasp_qs"] == pytest.approx(float(seen["grasp_rewards"].mean()), abs=1e-6)
    assert info["grasp_rewards"] == pytest.approx(float((batch["rewards"] + batch["grasp_penalty"]).mean()))
    env.close()


def test_hold_wrapper_follows_interventions_resets_and_leaves_bad_actions_to_the_env():
    recorder = CommandRecorder(gym.make("SerlFrankaPickCube-v0"))
    env = GripperHoldWrapper(recorder)
    env.reset(seed=0)
    assert env.held_gripper == -1.0
    env.step(np.array([0, 0, 0, 0.9], np.float32))
    env.step(np.array([0, 0, 0, 0.2], np.float32))
    assert recorder.grippers == [1.0, 1.0] and env.held_gripper == 1.0
    env.reset(seed=1)
    assert env.held_gripper == -1.0
    with pytest.raises(ValueError, match=r"action has non-finite values in \['gripper'\]"):
        env.step(np.array([0, 0, 0, np.nan], np.float32))
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(np.zeros(3, np.float32))
    env.close()

    class Intervened(gym.Wrapper):  # a person closed the gripper while the policy said "open"
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {**info, "intervene_action": np.array([0, 0, 0, 1.0])}

    env = GripperHoldWrapper(Intervened(gym.make("SerlFrankaPickCube-v0")))
    env.reset(seed=0)
    env.step(np.array([0, 0, 0, -1.0], np.float32))
    assert env.held_gripper == 1.0
    env.close()
    with pytest.raises(ValueError, match="needs an action with a gripper dimension; PegInsert has none"):
        GripperHoldWrapper(gym.make("SerlFrankaPegInsert-v0"))


# ------------------------------------------------------------------------------------------- acting


def test_env_action_is_the_actors_arm_dims_then_the_critics_gripper():
    torch.testing.assert_close(
        assemble_action(torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]), torch.tensor([CLOSE, OPEN])),
        torch.tensor([[0.1, -0.2, 0.3, 1.0], [0.4, 0.5, -0.6, -1.0]]),
    )
    agent = make_agent()
    obs = torch.randn(5, OBS_DIM)
    arm = agent.actor(agent.encoder({"state": obs})).mode().detach()
    for choice, value in ((OPEN, -1.0), (STAY, 0.0), (CLOSE, 1.0)):
        q = [0.0, 0.0, 0.0]
        q[choice] = 1.0
        set_constant_q(agent.grasp_critic, q)
        actions = agent.sample_actions(obs, deterministic=True)
        assert actions.shape == (5, ARM_DIM + 1)
        torch.testing.assert_close(actions[:, :ARM_DIM], arm)
        assert actions[:, ARM_DIM].tolist() == [value] * 5
    single = agent.sample_actions(obs[0].numpy(), deterministic=True)
    assert isinstance(single, np.ndarray) and single.shape == (ARM_DIM + 1,) and single[-1] == 1.0


def test_epsilon_greedy_only_when_not_deterministic():
    obs = torch.randn(600, OBS_DIM)
    greedy = make_agent(grasp_epsilon=0.0)
    set_constant_q(greedy.grasp_critic, [0.0, 0.0, 1.0])
    assert (greedy.sample_actions(obs)[:, -1] == 1.0).all()
    explorer = make_agent(grasp_epsilon=1.0)
    set_constant_q(explorer.grasp_critic, [0.0, 0.0, 1.0])
    assert (explorer.sample_actions(obs, deterministic=True)[:, -1] == 1.0).all()
    counts = torch.bincount(explorer.sample_actions(obs)[:, -1].long() + 1, minlength=3)
    assert counts.min() > 150  # uniform over the three choices: 200 expected each
    seeded = [explorer.sample_actions(obs, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    torch.testing.assert_close(seeded[0], seeded[1])


# ----------------------------------------------------------------------------------------- learning


def test_grasp_critic_overfits_a_fixed_batch():
    """Terminal transitions, every state with all three choices; only the state's best choice pays.
    The greedy gripper must then pick it in every state."""
    g = torch.Generator().manual_seed(0)
    states = torch.randn(32, OBS_DIM, generator=g)
    best = torch.where(states[:, 0] > 0.5, CLOSE, torch.where(states[:, 0] < -0.5, OPEN, STAY))
    choices = torch.arange(3).repeat_interleave(32)
    batch = {
        "observations": states.repeat(3, 1),
        "actions": torch.cat([torch.rand(96, ARM_DIM, generator=g) * 2 - 1, choices[:, None] - 1.0], 1),
        "rewards": (choices == best.repeat(3)).float(),
        "masks": torch.zeros(96),
        "next_observations": torch.randn(96, OBS_DIM, generator=g),
    }
    agent = make_agent(grasp_critic_lr=3e-3)
    _, first = agent.update(batch)
    for _ in range(300):
        _, info = agent.update(batch)
    assert info["grasp_critic_loss"] < first["grasp_critic_loss"] / 50
    gripper = agent.sample_actions(states, deterministic=True)[:, -1]
    assert gripper.tolist() == (best - 1).float().tolist()


def test_same_seed_same_training_and_save_load_continues_identically(tmp_path):
    batches = [make_batch(16, seed) for seed in range(4)]
    a, b = make_agent(seed=3), make_agent(seed=3)
    for batch in batches[:2]:
        info_a, info_b = a.update(batch, utd_ratio=2)[1], b.update(batch, utd_ratio=2)[1]
        assert dict(info_a) == dict(info_b)
    obs = torch.randn(4, OBS_DIM)
    torch.testing.assert_close(a.sample_actions(obs), b.sample_actions(obs))
    other = make_agent(seed=4)
    assert not torch.equal(other.grasp_critic.head.weight, make_agent(seed=3).grasp_critic.head.weight)

    a.save(tmp_path / "grasp.pt")
    loaded = GraspSACAgent.load(tmp_path / "grasp.pt")
    assert loaded.config == a.config and loaded.step == a.step
    for name, value in a.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    torch.testing.assert_close(
        loaded.sample_actions(obs, deterministic=True), a.sample_actions(obs, deterministic=True)
    )
    torch.testing.assert_close(loaded.sample_actions(obs), a.sample_actions(obs))  # acting stream continues
    assert dict(loaded.update(batches[2], utd_ratio=2)[1]) == dict(a.update(batches[2], utd_ratio=2)[1])
    torch.testing.assert_close(loaded.grasp_critic.head.weight, a.grasp_critic.head.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="holds a GraspSACAgent; load it with GraspSACAgent.load"):
        DrQAgent.load(tmp_path / "grasp.pt")


def image_obs(size: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    obs = {
        key: torch.randint(0, 256, (size, 32, 32, 3), dtype=torch.uint8, generator=g)
        for key in ("front", "wrist")
    }
    obs["state"] = torch.randn(size, 5, generator=g)
    return obs


def test_drq_grasp_critic_reads_detached_features_so_arm_learning_equals_drq(tmp_path):
    g = torch.Generator().manual_seed(0)
    common = {
        "image_keys": ("front", "wrist"),
        "critic_network_kwargs": SMALL,
        "policy_network_kwargs": SMALL,
        "critic_ensemble_size": 2,
        "seed": 1,
    }
    grasp = GraspDrQAgent.create_drq(
        image_obs(1, g), torch.zeros(1, 4), grasp_critic_network_kwargs=SMALL, **common
    )
    drq = DrQAgent.create_drq(image_obs(1, g), torch.zeros(1, 3), **common)
    batch = {
        "observations": image_obs(8, g), "actions": torch.rand(8, 4, generator=g) * 2 - 1,
        "rewards": torch.randn(8, generator=g), "masks": torch.ones(8), "next_observations": image_obs(8, g),
    }  # fmt: skip
    # the encoder has dropout: the grasp critic's extra encoder pass must not shift the SAC losses' masks
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in grasp.encoder.modules())
    before = {name: p.detach().clone() for name, p in grasp.grasp_critic.named_parameters()}
    _, info = grasp.update(batch, utd_ratio=2)
    drq.update({**batch, "actions": batch["actions"][:, :3]}, utd_ratio=2)
    drq_params = dict(drq.named_parameters())
    for name, param in grasp.named_parameters():  # encoder (with dropout), critics, actor, temperature
        if "grasp_critic" not in name:
            assert torch.equal(param, drq_params[name]), name
    assert all(not torch.equal(p, before[n]) for n, p in grasp.grasp_critic.named_parameters())
    assert np.isfinite(info["grasp_critic_loss"])

    grasp.save(tmp_path / "drq.pt")
    loaded = GraspDrQAgent.load(tmp_path / "drq.pt")
    obs = {key: value[0].numpy() for key, value in image_obs(1, g).items()}
    np.testing.assert_array_equal(loaded.sample_actions(obs, True), grasp.sample_actions(obs, True))
    assert loaded.sample_actions(obs).shape == (4,)


@pytest.mark.slow
def test_compiled_update_matches_eager():
    eager, compiled = make_agent(), make_agent(compile=True)
    for seed in range(2):
        want, got = eager.update(make_batch(16, seed))[1], compiled.update(make_batch(16, seed))[1]
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


# ------------------------------------------------------------------------------------------- errors


def test_bad_batches_and_options_fail_with_clear_errors():
    agent = make_agent()
    batch = make_batch(8)
    with pytest.raises(ValueError, match=r"batch\['actions'\] has shape \(8, 3\), expected \(8, 4\)"):
        agent.update({**batch, "actions": batch["actions"][:, :3]})
    with pytest.raises(ValueError, match="batch is missing key 'masks'"):
        agent.update({k: v for k, v in batch.items() if k != "masks"})
    with pytest.raises(ValueError, match=r"batch\['grasp_penalty'\] has shape \(7,\), expected \(8,\)"):
        agent.update({**batch, "grasp_penalty": torch.zeros(7)})
    with pytest.raises(ValueError, match=r"batch\['grasp_penalty'\] contains NaN or inf"):
        agent.update({**batch, "grasp_penalty": torch.full((8,), float("nan"))})
    with pytest.raises(ValueError, match=r"batch\['grasp_penalty'\] must be a torch.Tensor or numpy array"):
        agent.update({**batch, "grasp_penalty": [0.0] * 8})
    bad_gripper = batch["actions"].clone()
    bad_gripper[0, -1] = float("inf")
    with pytest.raises(ValueError, match=r"batch\['actions'\] contains NaN or inf"):
        agent.update({**batch, "actions": bad_gripper})
    with pytest.raises(ValueError, match="batch size 8 is not divisible by utd_ratio=3"):
        agent.update(batch, utd_ratio=3)
    with pytest.raises(
        ValueError,
        match=r"needs an env action example with arm dims and the gripper last, got shape \(1, 1\)",
    ):
        GraspSACAgent.create_states(torch.zeros(1, OBS_DIM), torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"grasp_epsilon must be in \[0, 1\], got 1.5"):
        make_agent(grasp_epsilon=1.5)
    with pytest.raises(ValueError, match="grasp_critic_lr must be > 0, got 0"):
        make_agent(grasp_critic_lr=0)
    with pytest.raises(ValueError, match=r"unknown GraspSACConfig options \['grasp_eps'\]"):
        make_agent(grasp_eps=0.1)

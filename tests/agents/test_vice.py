"""VICE: its update lowers its loss on a fixed batch, the gradient penalty is computed and weighted, rewards come
from the classifier, and its state round-trips through a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serl_agents.classifier import classifier_loss
from serl_agents.vice import VICE, VICEConfig, make_vice

SHAPE = (32, 32, 3)
KEYS = ("front", "wrist")
SMALL = dict(encoder_kwargs={"bottleneck_dim": 32}, hidden_dim=32, batch_size=16)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small convolutions run fastest on one thread; more only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def frames(count: int, value_range: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.integers(*value_range, (count, *SHAPE), dtype=np.uint8) for key in KEYS}


def make(seed: int = 0, **kwargs) -> VICE:
    return VICE(frames(20, (150, 256), 0), VICEConfig(**{**SMALL, **kwargs}), seed=seed)


def test_update_reduces_the_loss_on_a_fixed_batch():
    vice = make()
    replay = frames(16, (0, 100), 1)
    start = vice.rngs["train"].get_state()

    def fixed_loss() -> float:  # same goals, shifts and mixup draws each time; no dropout
        vice.rngs["train"].set_state(start)
        vice.classifier.eval()
        with torch.no_grad():
            return float(vice.loss(replay)[1]["bce"])

    before = fixed_loss()
    infos = [vice.update(replay) for _ in range(30)]
    assert fixed_loss() < 0.7 * before
    assert vice.step == 30
    assert set(infos[0]) == {"vice/bce", "vice/gradient_penalty", "vice/grad_norm", "vice/loss"}
    assert all(np.isfinite(list(info.values())).all() for info in infos)


def test_gradient_penalty_is_computed_weighted_and_trains_the_head():
    classifier = make().classifier.eval()  # no dropout: both losses see the same network
    goals, replay = (torch.as_tensor(f["front"]) for f in (frames(8, (150, 256), 2), frames(8, (0, 100), 3)))
    positives = {"front": goals, "wrist": goals}
    negatives = {"front": replay, "wrist": replay}

    def loss(weight: float):
        generator = torch.Generator().manual_seed(5)
        return classifier_loss(classifier, positives, negatives, generator, 0.2, 1.0, weight)

    plain, plain_info = loss(0.0)
    penalised, info = loss(10.0)
    assert "gradient_penalty" not in plain_info
    assert info["gradient_penalty"] > 0 and info["grad_norm"] > 0
    assert torch.allclose(penalised, plain + 10.0 * info["gradient_penalty"])
    # The penalty by itself has gradients on the head, none on the encoders (its points are detached).
    classifier.zero_grad()
    info["gradient_penalty"].backward()
    assert classifier.head[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in classifier.encoder.parameters())


def test_mixup_and_label_smoothing_change_the_targets():
    vice = make()
    vice.classifier.eval()
    obs = {key: torch.as_tensor(frames(4, (0, 256), 4)[key]) for key in KEYS}

    def bce(smoothing: float, alpha: float) -> float:
        loss, _ = classifier_loss(vice.classifier, obs, obs, torch.Generator().manual_seed(0), smoothing, alpha)
        return float(loss.detach())

    # Identical images labelled 1 and 0: without mixup the loss is the same whatever the smoothing.
    assert bce(0.0, 0.0) == pytest.approx(bce(0.2, 0.0), rel=1e-6)
    assert bce(0.0, 1.0) != pytest.approx(bce(0.0, 0.0), rel=1e-3)


def test_rewards_and_relabel():
    vice = make()
    batch = {"next_observations": frames(6, (0, 256), 5), "observations": frames(6, (0, 256), 6),
             "rewards": torch.full((6,), 7.0), "masks": torch.ones(6)}
    probability = vice.classifier.predict_proba(batch["next_observations"])
    assert torch.equal(vice.rewards(batch["next_observations"]), (probability >= 0.5).float())
    new, info = vice.relabel(batch)
    assert vice.step == 1 and set(new) == set(batch) and new["masks"] is batch["masks"]
    assert torch.equal(new["rewards"], vice.rewards(batch["next_observations"]))
    assert info["vice/reward"] == pytest.approx(float(new["rewards"].mean()))
    soft = make(reward="probability")
    p = soft.classifier.predict_proba(batch["next_observations"])
    assert torch.equal(soft.rewards(batch["next_observations"]), p) and ((p > 0) & (p < 1)).all()


def test_negatives_come_from_the_whole_batch_not_its_first_rows():
    """A 50/50 batch holds its demo rows first (here: copies of goal frames). The online rows after them are what
    VICE must learn to call failures; a classifier shown only the first batch_size rows never sees them."""
    goals = frames(20, (150, 256), 0)
    online = frames(48, (0, 60), 7)
    batch = {key: np.concatenate([goals[key][:16], online[key]]) for key in KEYS}  # 16 demo rows, then 48 online
    vice = make()
    for _ in range(40):
        vice.update(batch)
    vice.classifier.eval()
    with torch.no_grad():
        p_online = vice.classifier.predict_proba(online)
        p_goal = vice.classifier.predict_proba(goals)
    assert float(p_online.max()) < 0.5 and float(p_goal.mean()) > float(p_online.mean()) + 0.2


def test_same_seed_same_updates_and_checkpoint_continues_exactly(tmp_path):
    replay = frames(16, (0, 100), 1)
    a, b = make(seed=1), make(seed=1)
    assert a.update(replay) == b.update(replay)
    a.save(tmp_path / "vice.pt")
    c = make(seed=9)
    c.load_state(tmp_path / "vice.pt")
    assert c.step == 1
    assert a.update(replay) == c.update(replay)
    for x, y in zip(a.classifier.state_dict().values(), c.classifier.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="was saved with VICEConfig"):
        make(gradient_penalty=1.0).load_state(tmp_path / "vice.pt")


def test_make_vice_reads_goal_examples_from_png_folders(tmp_path):
    import imageio.v2 as imageio

    for key, images in frames(3, (0, 256), 7).items():
        (tmp_path / "goals" / key).mkdir(parents=True)
        for i, image in enumerate(images):
            imageio.imwrite(tmp_path / "goals" / key / f"{i}.png", image)
    vice = make_vice(tmp_path / "goals", ["wrist", "front"], seed=0, **SMALL)
    assert vice.num_goals == 3 and vice.image_keys == ["wrist", "front"]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="reward must be one of \\['binary', 'probability'\\], got 'dense'"):
        VICEConfig(reward="dense")
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\), got 1.0"):
        VICEConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="goal_examples lacks|goal_examples\\['front'\\] has shape"):
        VICE({"front": np.zeros((2, 32, 32), np.uint8)})


def test_train_loop_with_vice_relabels_batches_checkpoints_and_resumes(tmp_path, monkeypatch):
    """`serl train --agent drq --reward vice --goal-examples DATASET`: every update sees VICE's rewards, never the
    env's, and the classifier's state is checkpointed and restored on resume."""
    import gymnasium as gym

    from serl_agents.config import TrainConfig
    from serl_agents.train import Trainer
    from serl_envs.demos import DemoWriter, Episode

    monkeypatch.setenv("SERL_NO_PROGRESS", "1")
    space = gym.make("SerlFrankaPickCubeVision-v0").observation_space
    writer = DemoWriter(tmp_path / "goals", space, gym.spaces.Box(-1, 1, (4,), np.float32))
    rng = np.random.default_rng(0)
    observations = [{key: rng.integers(0, 256, sub.shape, dtype=np.uint8) if sub.dtype == np.uint8
                     else np.zeros(sub.shape, np.float32) for key, sub in space.spaces.items()} for _ in range(3)]
    writer.append(Episode(observations=observations, actions=[np.zeros(4, np.float32)] * 2, rewards=[0.0, 1.0],
                          terminations=[False, False], truncations=[False, True],
                          infos={"is_success": [False, True, True]}, success=True))
    tiny = {"critic_network_kwargs": {"hidden_dims": [16]}, "policy_network_kwargs": {"hidden_dims": [16]},
            "critic_ensemble_size": 2, "encoder_kwargs": {"bottleneck_dim": 16}}
    cfg = dict(env="SerlFrankaPickCubeVision-v0", agent="drq", out=tmp_path / "run", batch_size=4, utd_ratio=1,
               random_steps=10, training_starts=10, replay_capacity=100, eval_every=1000, eval_episodes=1, video=False,
               checkpoint_every=1000, agent_kwargs=tiny, reward="vice", goal_examples=tmp_path / "goals",
               vice_kwargs={"batch_size": 4, "hidden_dim": 16, "encoder_kwargs": {"bottleneck_dim": 16},
                            "reward": "probability"})
    trainer = Trainer(TrainConfig(steps=14, **cfg))
    assert trainer.vice.num_goals == 2  # the two frames flagged is_success
    seen = []
    update = trainer.agent.update

    def spy(batch, utd_ratio=1):
        seen.append(torch.equal(batch["rewards"], trainer.vice.rewards(batch["next_observations"])))
        return update(batch, utd_ratio=utd_ratio)

    trainer.agent.update = spy
    trainer.train()
    assert seen == [True] * 5 and trainer.vice.step == 5
    assert (tmp_path / "run" / "checkpoints" / "step_000000014" / "vice.pt").exists()
    resumed = Trainer(TrainConfig(steps=15, resume=True, **cfg))
    resumed.train()
    assert resumed.vice.step == 6


def test_train_config_checks_the_vice_options():
    from serl_agents.config import TrainConfig

    with pytest.raises(ValueError, match="reward 'vice' needs --agent drq and --goal-examples DATASET"):
        TrainConfig(agent="drq", reward="vice")
    with pytest.raises(ValueError, match="reward must be 'env' or 'vice', got 'learned'"):
        TrainConfig(reward="learned")

"""`serl train --preset hil-serl` uses HIL-SERL's learned gripper: a grasp agent, envs wrapped with the
gripper hold and penalty wrappers, grasp_penalty stored with every transition, its loss logged, checkpoints
resumable."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from serl_agents.cli import main
from serl_agents.config import TrainConfig, apply_preset
from serl_agents.grasp import GraspSACAgent, GripperHoldWrapper
from serl_agents.replay import ReplayBuffer
from serl_agents.sac import SACAgent
from serl_agents.train import Trainer, grasp_penalties, make_transition
from serl_envs.wrappers import GripperPenaltyWrapper

os.environ["SERL_NO_PROGRESS"] = "1"
TINY = {
    "critic_network_kwargs": {"hidden_dims": [32, 32]},
    "policy_network_kwargs": {"hidden_dims": [32, 32]},
    "grasp_critic_network_kwargs": {"hidden_dims": [32, 32]},
}


def hil_config(out, **overrides) -> TrainConfig:
    """The hil-serl preset on the state PickCube (sac), with tiny nets and small batches."""
    values = {
        "agent": "sac",
        "env": "SerlFrankaPickCube-v0",
        "out": out,
        "steps": 200,
        "batch_size": 32,
        "expert_demos": 0,
        "random_steps": 60,
        "training_starts": 50,
        "eval_every": 100_000,
        "eval_episodes": 1,
        "checkpoint_every": 100,
        "video": False,
        "log_every": 50,
        "agent_kwargs": TINY,
    }
    return apply_preset("hil-serl", {**values, **overrides})


def stored(buffer: ReplayBuffer) -> list[dict]:
    """The buffer's transitions in insertion order (no wrap-around here): actions, penalty, dones."""
    n = buffer._filled
    valid = np.flatnonzero(buffer._valid[:n])
    return [
        {
            "actions": tuple(buffer._data["actions"][i].tolist()),
            "grasp_penalty": float(buffer._data["grasp_penalty"][i]),
            "dones": bool(buffer._data["dones"][i]),
        }
        for i in valid
    ]


def scalar_tags(run_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_hil_serl_preset_trains_a_grasp_agent_that_stores_penalties(tmp_path, capsys):
    cfg = hil_config(tmp_path / "run", expert_demos=2)
    assert cfg.grasp_critic == "auto" and cfg.grasp_penalty == -0.02
    trainer = Trainer(cfg)
    assert isinstance(trainer.agent, GraspSACAgent) and trainer.agent.env_action_dim == 4
    for env in (trainer.env, trainer.eval_env):
        assert isinstance(env, GripperHoldWrapper) and isinstance(env.env, GripperPenaltyWrapper)
        assert env.env.penalty == -0.02
    trainer.train()

    # Online buffer: every step's penalty is the wrapper's, nonzero exactly where the stored gripper command
    # toggled.
    online = stored(trainer.replay)
    assert len(online) == 200
    penalties = [t["grasp_penalty"] for t in online]
    assert set(penalties) == {0.0, float(np.float32(-0.02))} and sum(p != 0 for p in penalties) >= 5
    expected = grasp_penalties(online, -0.02, initial_closed=False)
    assert penalties == [pytest.approx(t["grasp_penalty"]) for t in expected]
    # Demo buffer: the expert closes the gripper once per episode, and each close costs the penalty once.
    demos = stored(trainer.demo_buffer)
    assert sum(t["dones"] for t in demos) == 2
    assert sum(t["grasp_penalty"] for t in demos) == pytest.approx(2 * -0.02)

    # Training batches carry the penalty and the grasp critic's loss is logged.
    batch = trainer.sample_batch()
    assert batch["grasp_penalty"].shape == (cfg.batch_size * cfg.utd_ratio,)
    assert {"train/grasp_critic_loss", "train/predicted_grasp_qs", "train/critic_loss"} <= scalar_tags(
        cfg.out
    )

    # `serl eval` runs the grasp agent through the gripper hold wrapper.
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(cfg.out), "--episodes", "1"]) == 0
    assert "SerlFrankaPickCube-v0: success" in capsys.readouterr().out


def test_interventions_carry_their_penalty_into_both_buffers(tmp_path):
    """The gripper wrappers sit outside the InterventionWrapper: the expert's takeover (last 80% of the
    episode) is what they hold and charge, and those transitions reach the demo buffer with their penalty."""
    trainer = Trainer(
        hil_config(
            tmp_path / "hil",
            steps=100,
            random_steps=0,
            training_starts=1000,
            intervention="expert",
            intervention_fraction=0.8,
        )
    )
    assert isinstance(trainer.env.env, GripperPenaltyWrapper)
    assert type(trainer.env.env.env).__name__ == "InterventionWrapper"
    trainer.train()
    online, demos = stored(trainer.replay), stored(trainer.demo_buffer)
    assert len(online) == 100 and demos == online[20:]
    expected = grasp_penalties(online, -0.02, initial_closed=False)
    assert [t["grasp_penalty"] for t in online] == [pytest.approx(t["grasp_penalty"]) for t in expected]
    assert all(abs(t["actions"][-1]) == 1.0 for t in demos)  # the expert commands open or closed
    closes = [t for t in demos if t["actions"][-1] == 1.0]
    assert closes and closes[0]["grasp_penalty"] == pytest.approx(-0.02)  # the expert's grasp is charged once
    assert all(t["grasp_penalty"] == 0.0 for t in closes[1:])


def test_the_expert_helps_only_in_the_first_intervention_episodes(tmp_path):
    """--intervention-episodes 1: the expert takes the second half of episode 0 and never touches 1 and 2."""
    trainer = Trainer(hil_config(tmp_path / "early", steps=300, random_steps=0, training_starts=1000,
                                 intervention="expert", intervention_fraction=0.5, intervention_episodes=1))
    trainer.train()
    online, demos = stored(trainer.replay), stored(trainer.demo_buffer)
    assert len(online) == 300 and demos == online[50:100]
    with pytest.raises(ValueError, match="^intervention_episodes must be >= 0 or None, got -1$"):
        hil_config(tmp_path / "bad", intervention="expert", intervention_episodes=-1)
    with pytest.raises(ValueError, match="^intervention_episodes schedules the scripted expert: it needs "
                                         "--intervention expert$"):
        hil_config(tmp_path / "bad", intervention_episodes=3)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = Trainer(hil_config(tmp_path / "straight"))
    straight.train()
    first = Trainer(hil_config(tmp_path / "split", steps=100))
    first.train()
    saved_obs = first.replay.sample(8)["observations"]
    resumed = Trainer(hil_config(tmp_path / "split", resume=True))
    assert resumed.load_checkpoint() and resumed.state.step == 100
    assert isinstance(resumed.agent, GraspSACAgent) and resumed.replay.layout.grasp_penalty
    torch.testing.assert_close(
        resumed.agent.sample_actions(saved_obs, deterministic=True),
        first.agent.sample_actions(saved_obs, deterministic=True),
        rtol=0,
        atol=0,
    )
    for name, value in first.agent.grasp_critic.state_dict().items():
        assert torch.equal(value, resumed.agent.grasp_critic.state_dict()[name]), name

    resumed = Trainer(hil_config(tmp_path / "split", resume=True))
    resumed.train()  # 100 -> 200
    assert resumed.state.step == 200
    for name, value in straight.agent.state_dict().items():
        assert torch.equal(value, resumed.agent.state_dict()[name]), name
    obs = straight.replay.sample(16)["observations"]
    torch.testing.assert_close(
        resumed.agent.sample_actions(obs, deterministic=True),
        straight.agent.sample_actions(obs, deterministic=True),
        rtol=0,
        atol=0,
    )
    assert stored(resumed.replay) == stored(straight.replay)


def test_a_checkpoint_without_a_grasp_critic_still_resumes_but_not_into_a_grasp_run(tmp_path):
    plain_cfg = hil_config(
        tmp_path / "plain",
        steps=100,
        grasp_critic="off",
        agent_kwargs={k: v for k, v in TINY.items() if k != "grasp_critic_network_kwargs"},
    )
    plain = Trainer(plain_cfg)
    assert type(plain.agent) is SACAgent and not plain.replay.layout.grasp_penalty
    assert not isinstance(plain.env, GripperHoldWrapper) and not isinstance(
        plain.eval_env, GripperHoldWrapper
    )
    plain.train()
    again = Trainer(plain_cfg)
    assert again.load_checkpoint() and type(again.agent) is SACAgent and len(again.replay) == 100
    grasp = Trainer(hil_config(tmp_path / "plain", steps=100))
    with pytest.raises(
        ValueError,
        match="was written by a run without a grasp critic, but this run has "
        "grasp_critic='auto' on SerlFrankaPickCube-v0",
    ):
        grasp.load_checkpoint()
    assert grasp.state.step == 0 and len(grasp.replay) == 0
    for trainer in (again, grasp):
        trainer.env.close()
        trainer.eval_env.close()


def test_grasp_critic_modes_and_gripperless_tasks(tmp_path):
    # auto: on where the task has a gripper, off where it does not (PegInsert keeps its gripper closed).
    peg = Trainer(
        hil_config(
            tmp_path / "peg",
            env="SerlFrankaPegInsert-v0",
            agent_kwargs={k: v for k, v in TINY.items() if k != "grasp_critic_network_kwargs"},
        )
    )
    assert type(peg.agent) is SACAgent and not peg.replay.layout.grasp_penalty and not peg.grasp_critic
    assert not isinstance(peg.env, GripperHoldWrapper)
    peg.env.close()
    peg.eval_env.close()
    with pytest.raises(
        ValueError,
        match=r"grasp_critic 'on' needs a task whose action has a gripper dimension; "
        r"SerlFrankaPegInsert-v0 has none \(action space Box",
    ):
        Trainer(hil_config(tmp_path / "peg_on", env="SerlFrankaPegInsert-v0", grasp_critic="on"))
    assert (
        TrainConfig(grasp_critic=True).grasp_critic == "on"
        and TrainConfig(grasp_critic=False).grasp_critic == "off"
    )
    with pytest.raises(ValueError, match=r"grasp_critic must be one of \['off', 'on', 'auto'\], got 'yes'"):
        TrainConfig(grasp_critic="yes")
    with pytest.raises(ValueError, match="grasp_critic 'on' needs agent 'sac' or 'drq', got 'bc'"):
        TrainConfig(agent="bc", grasp_critic="on")
    with pytest.raises(ValueError, match="grasp_penalty must be finite, got nan"):
        TrainConfig(grasp_penalty=float("nan"))


def test_print_config_shows_the_grasp_critic_and_async_runs_it(capsys, monkeypatch):
    assert main(["train", "--preset", "hil-serl", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["grasp_critic"] == "auto" and printed["grasp_penalty"] == -0.02
    assert (
        main(
            [
                "train",
                "--preset",
                "hil-serl",
                "--grasp-critic",
                "off",
                "--grasp-penalty",
                "-0.05",
                "--print-config",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["grasp_critic"] == "off" and printed["grasp_penalty"] == -0.05
    assert json.loads(TrainConfig().to_json())["grasp_critic"] == "off"
    # --async takes the grasp critic to the actor/learner run (tests/distributed/test_async_grasp.py runs one).
    started = []
    monkeypatch.setattr(
        "serl_agents.distributed.launcher.main_train_async", lambda cfg, acfg: started.append(cfg) or 0
    )
    assert main(["train", "--preset", "hil-serl", "--async"]) == 0
    assert [cfg.grasp_critic for cfg in started] == ["auto"]


def test_make_transition_and_demo_penalties():
    obs, act = np.zeros(3, np.float32), np.zeros(4, np.float32)
    assert "grasp_penalty" not in make_transition(obs, act, 0.0, False, False, obs)
    assert make_transition(obs, act, 0.0, True, False, obs, -0.02)["grasp_penalty"] == -0.02
    # Hysteresis as GripperPenaltyWrapper: > 0.5 closes, < -0.5 opens, between keeps; episodes restart open.
    grips = [0.0, 0.7, 0.2, 0.9, -0.3, -0.8, 1.0, 0.6]
    dones = [False, False, False, False, False, False, True, False]
    demo = [
        {"actions": np.array([0, 0, 0, g], np.float32), "dones": d} for g, d in zip(grips, dones, strict=True)
    ]
    got = [t["grasp_penalty"] for t in grasp_penalties(demo, -0.02, initial_closed=False)]
    assert got == [0.0, -0.02, 0.0, 0.0, 0.0, -0.02, -0.02, -0.02]
    got = [t["grasp_penalty"] for t in grasp_penalties(demo, -0.02, initial_closed=True)]
    assert got == [0.0, 0.0, 0.0, 0.0, 0.0, -0.02, -0.02, 0.0]

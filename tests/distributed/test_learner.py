"""The learner, the weights it publishes and the async settings, in-process (no Ray): batches are counted and
stored exactly once, intervened rows reach the demo buffer, weights round-trip, a checkpoint resumes exactly."""

import argparse
import dataclasses
import json
import os
import shlex
import signal
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from serl_agents.cli import main
from serl_agents.config import TrainConfig, add_dataclass_flags, config_from_args
from serl_agents.distributed.actor import hold_robot, stack_transitions
from serl_agents.distributed.config import AsyncConfig, add_async_flags, async_config_from_args, ray_options
from serl_agents.distributed.launcher import describe_async_stop, run_async
from serl_agents.distributed.learner import Learner
from serl_agents.distributed.pause import claim_run_dir, release_run_dir, request_pause, resume_command
from serl_agents.distributed.weights import load_policy_weights, policy_weights
from serl_agents.stop_signals import StopSignals
from serl_agents.train import make_agent, make_env, make_transition

ENV = "SerlFrankaPickCube-v0"
TINY = {"critic_network_kwargs": {"hidden_dims": [16, 16]}, "policy_network_kwargs": {"hidden_dims": [16, 16]},
        "critic_ensemble_size": 2}


def config(tmp_path, **overrides) -> TrainConfig:
    values = dict(env=ENV, steps=120, out=tmp_path / "run", batch_size=16, utd_ratio=2, random_steps=0,
                  training_starts=20, eval_every=10_000, eval_episodes=1, video=False, checkpoint_every=10_000,
                  device="cpu", agent_kwargs=TINY, expert_demos=0)
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def episode():
    """40 real transitions of the state env (random actions), as an actor would send them."""
    env = make_env(ENV)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    out = []
    for _ in range(40):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        out.append(make_transition(obs, action, reward, terminated, truncated, next_obs))
        obs = next_obs
    spaces = (env.observation_space, env.action_space)
    env.close()
    return out, spaces


def learner_for(cfg, spaces, **acfg) -> Learner:
    return Learner(cfg, AsyncConfig(**{"learner_nice": 0, **acfg}), *spaces)  # in-process: keep pytest's priority


def send(learner, transitions, index=0, intervened=None):
    flags = np.zeros(len(transitions), bool) if intervened is None else np.asarray(intervened)
    return learner.add_transitions(index, stack_transitions(transitions), flags, [], version=0)


def test_batches_are_counted_once_and_refused_past_the_end(tmp_path, episode):
    transitions, spaces = episode
    learner = learner_for(config(tmp_path, steps=50), spaces)
    learner.register_actor(0)
    assert send(learner, transitions[:30]) == {"accepted": 30, "step": 30, "stop": False, "version": 0}
    reply = send(learner, transitions[30:], index=1, intervened=[i % 2 == 0 for i in range(10)])
    assert reply == {"accepted": 10, "step": 40, "stop": False, "version": 0}
    assert send(learner, transitions[:20]) == {"accepted": 10, "step": 50, "stop": True, "version": 0}  # cut at `steps`
    assert send(learner, transitions[:5]) == {"accepted": 0, "step": 50, "stop": True, "version": 0}
    with SummaryWriter(str(tmp_path / "tb")) as writer:
        assert learner._drain(writer) == 50
    assert len(learner.replay) == 50 and learner.state.step == 50
    assert len(learner.demo_buffer) == 5 and learner.state.intervened == 5
    status = learner.status()
    assert status["actors"][0]["transitions"] == 40 and status["actors"][1]["transitions"] == 10
    assert status["actors"][0]["starts"] == [{"start": 1, "first_version": 0, "last_version": 0}]
    # the demo buffer holds exactly the intervened rows (their actions), nothing else
    demo_actions = {tuple(a) for a in learner.demo_buffer._data["actions"][learner.demo_buffer._valid]}
    assert demo_actions == {tuple(transitions[30 + i]["actions"]) for i in range(0, 10, 2)}


def test_bad_batches_fail_the_sender_with_a_clear_error(tmp_path, episode):
    transitions, spaces = episode
    learner = learner_for(config(tmp_path), spaces)
    batch = stack_transitions(transitions[:4])
    with pytest.raises(ValueError, match=r"intervened has shape \(3,\), expected \(4,\) for 4 transitions"):
        learner.add_transitions(0, batch, np.zeros(3, bool), [], version=0)
    with pytest.raises(ValueError, match=r"actions has shape \(4, 3\), expected \(4, 4\)"):
        learner.add_transitions(0, {**batch, "actions": batch["actions"][:, :3]}, np.zeros(4, bool), [], 0)
    assert learner.status()["accepted"] == 0


def test_published_weights_make_the_actor_act_like_the_learner(tmp_path, episode):
    transitions, spaces = episode
    cfg = config(tmp_path)
    learner = learner_for(cfg, spaces)
    for _ in range(3):  # move the weights away from their initial values
        learner.agent.update(stack_transitions(transitions[:32]), utd_ratio=2)
    learner._publish()
    acting = make_agent(dataclasses.replace(cfg, seed=7), *spaces, torch.device("cpu"))
    assert learner.get_weights(have_version=-1).version == 3
    assert learner.get_weights(have_version=3) is None
    load_policy_weights(acting, learner.register_actor(0)["weights"])
    obs = np.stack([t["observations"] for t in transitions])
    np.testing.assert_array_equal(acting.sample_actions(obs, deterministic=True),
                                  learner.agent.sample_actions(obs, deterministic=True))
    names = set(policy_weights(learner.agent, 3, include_frozen=True).arrays)
    assert names and all(n.startswith(("encoder.", "actor.")) for n in names)  # no critic, no optimizer
    with pytest.raises(ValueError, match="has entries .* this agent does not have"):
        bad = policy_weights(learner.agent, 3, include_frozen=True)
        load_policy_weights(acting, dataclasses.replace(bad, arrays={**bad.arrays, "actor.nope": np.zeros(1)}))


def test_frozen_parameters_travel_only_at_registration(tmp_path, episode):
    _, spaces = episode
    learner = learner_for(config(tmp_path), spaces)
    learner.agent.actor.requires_grad_(False)  # stand-in for a frozen pretrained encoder
    learner._frozen = {n for n, p in learner.agent.named_parameters() if not p.requires_grad}
    learner._publish()
    assert not any(n.startswith("actor.") for n in learner.get_weights(-1).arrays)
    assert any(n.startswith("actor.") for n in learner.register_actor(0)["weights"].arrays)


def test_run_loop_trains_publishes_and_checkpoints_then_resumes_exactly(tmp_path, episode):
    transitions, spaces = episode
    cfg = config(tmp_path, steps=120, checkpoint_every=80)
    learner = learner_for(cfg, spaces, publish_every=2)
    learner.register_actor(0)
    thread = threading.Thread(target=lambda: setattr(learner, "summary", learner.run()))
    thread.start()
    send(learner, transitions)
    for _ in range(600):  # let it train on the first 40 before the rest arrives
        if learner.agent.step >= 4:
            break
        thread.join(timeout=0.1)
    send(learner, transitions)
    reply = send(learner, transitions)
    assert (reply["accepted"], reply["step"], reply["stop"]) == (40, 120, True) and reply["version"] >= 4
    thread.join(timeout=120)
    summary = learner.summary
    assert summary["status"] == "finished" and summary["step"] == 120 and summary["updates"] >= 1
    assert summary["checkpoint"].endswith("step_000000120")
    assert learner.get_weights(-1).version == learner.agent.step

    resumed = learner_for(dataclasses.replace(cfg, resume=True, steps=200), spaces, publish_every=2)
    assert resumed.resumed and resumed.state.step == 120 and len(resumed.replay) == 120
    assert resumed.state.starts == {"0": 1} and resumed.register_actor(0)["start"] == 2
    assert resumed.agent.step == learner.agent.step == resumed.get_weights(-1).version
    for name, tensor in learner.agent.state_dict().items():
        torch.testing.assert_close(resumed.agent.state_dict()[name], tensor, rtol=0, atol=0)
    batch = stack_transitions(transitions[:32])  # same weights, optimizer and RNG: the next update is identical
    _, a = learner.agent.update(batch, utd_ratio=2)
    _, b = resumed.agent.update(batch, utd_ratio=2)
    assert a["critic_loss"] == b["critic_loss"] and a["actor_loss"] == b["actor_loss"]


def test_stop_request_with_checkpoint_is_a_pause(tmp_path, episode):
    transitions, spaces = episode
    learner = learner_for(config(tmp_path, steps=1000), spaces)
    send(learner, transitions)
    learner.request_stop(checkpoint=True)
    assert send(learner, transitions)["accepted"] == 0
    summary = learner.run()
    assert summary["status"] == "paused" and summary["step"] == 40
    assert summary["checkpoint"].endswith("step_000000040")


def test_async_config_validation_and_ray_options():
    with pytest.raises(ValueError, match="num_actors must be >= 1, got 0"):
        AsyncConfig(num_actors=0)
    with pytest.raises(ValueError, match="timeout_s must be a positive number of seconds, got -1"):
        AsyncConfig(timeout_s=-1)
    with pytest.raises(ValueError, match=r"actor_resources\['num_gpus'\] must be a number >= 0, got 'one'"):
        AsyncConfig(actor_resources={"num_gpus": "one"})
    assert ray_options({"num_cpus": 2, "num_gpus": 1, "robot_pc": 1}) == {
        "num_cpus": 2, "num_gpus": 1, "resources": {"robot_pc": 1.0}}


def parse(argv):
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, TrainConfig)
    add_async_flags(parser)
    args = parser.parse_args(argv)
    return config_from_args(args, None), async_config_from_args(args)


def test_resume_command_reproduces_the_run_and_async_flags_need_async(tmp_path):
    cfg, acfg = parse(["--async", "--out", str(tmp_path / "run"), "--steps", "500", "--video", "false",
                       "--agent-kwargs", json.dumps(TINY), "--num-actors", "2", "--actor-resources",
                       '{"num_cpus": 0.5}', "--realtime", "true"])
    words = shlex.split(resume_command(cfg, acfg))
    assert words[:3] == ["serl", "train", "--async"] and words[-2:] == ["--resume", "true"]
    cfg2, acfg2 = parse(words[2:])
    assert cfg2 == dataclasses.replace(cfg, resume=True) and acfg2 == acfg
    with pytest.raises(ValueError, match="--num-actors, --ray-address only apply to asynchronous runs: add --async"):
        parse(["--num-actors", "2", "--ray-address", "auto"])
    assert parse(["--steps", "5"])[1] is None


def test_cli_async_without_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["train", "--async", "--out", str(tmp_path / "run"), "--steps", "10"])
    assert code == 2
    assert 'pip install "serl-torch[distributed]"' in capsys.readouterr().err


def test_pause_needs_a_running_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["pause", str(tmp_path)])
    assert f"no asynchronous run is active in {tmp_path}" in capsys.readouterr().err
    claim_run_dir(tmp_path)
    request_pause(tmp_path)
    assert (tmp_path / "pause.request").exists()
    release_run_dir(tmp_path)
    assert not (tmp_path / "pause.request").exists() and not (tmp_path / "async_run.json").exists()


def test_hold_robot_stops_a_real_robot_and_leaves_a_sim_alone():
    stops = []
    client = SimpleNamespace(stop=lambda: stops.append(True))  # the robot server client of a real env
    hold_robot(SimpleNamespace(unwrapped=SimpleNamespace(robot=SimpleNamespace(client=client))))
    assert stops == [True]
    env = make_env(ENV)
    hold_robot(env)  # a sim robot has no server: nothing to call, nothing raised
    env.close()


def test_run_async_rejects_what_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="agent 'bc' learns offline from demonstrations"):
        run_async(config(tmp_path, agent="bc"), AsyncConfig())
    with pytest.raises(ValueError, match=r"--device cuda needs a GPU for the learner: add --learner-resources"):
        run_async(config(tmp_path, device="cuda"), AsyncConfig())
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_signals_sigterm_pauses_ctrl_c_stops_and_a_second_ctrl_c_kills(capsys):
    run = SimpleNamespace(stop_reason=None)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals(run, describe_async_stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert run.stop_reason == "pause"
        run.stop_reason = None
        os.kill(os.getpid(), signal.SIGINT)
        assert run.stop_reason == "interrupt"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # restored on exit
    assert "stopping: actors hold, learner checkpoints" in capsys.readouterr().out

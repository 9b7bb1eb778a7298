"""`serl train --async --preset hil-serl`: HIL-SERL's learned gripper in the actor/learner split. Actors wrap their
env like the synchronous loop and send each step's grasp_penalty, the learner trains the grasp agent on buffers that
store it, the published weights carry the grasp critic, and a pause/resume keeps all of it."""

import dataclasses

import numpy as np
import pytest
import torch
from async_helpers import ENV, two_actors
from torch.utils.tensorboard import SummaryWriter

from serl_agents.config import apply_preset
from serl_agents.distributed import run_async
from serl_agents.distributed.actor import Actor, stack_transitions
from serl_agents.distributed.config import AsyncConfig
from serl_agents.distributed.learner import Learner
from serl_agents.distributed.weights import load_policy_weights, policy_weights
from serl_agents.grasp import GraspSACAgent, GripperHoldWrapper
from serl_agents.replay import ReplayBuffer
from serl_agents.train import make_agent, make_transition
from serl_envs.wrappers import GripperPenaltyWrapper, InterventionWrapper

PENALTY = float(np.float32(-0.02))
TINY = {"critic_network_kwargs": {"hidden_dims": [16, 16]}, "policy_network_kwargs": {"hidden_dims": [16, 16]},
        "grasp_critic_network_kwargs": {"hidden_dims": [16, 16]}}


def hil_config(out, **overrides):
    """The hil-serl preset with sac on the state PickCube, tiny nets and small batches."""
    values = dict(agent="sac", env=ENV, out=out, steps=500, batch_size=32, utd_ratio=2, random_steps=100,
                  training_starts=100, eval_every=100_000, eval_episodes=1, video=False, checkpoint_every=100_000,
                  device="cpu", torch_threads=1, expert_demos=0, agent_kwargs=TINY)
    return apply_preset("hil-serl", {**values, **overrides})


def saved(npz_path) -> dict[str, np.ndarray]:
    """Gripper commands, grasp penalties and dones of the valid rows of a saved buffer."""
    buffer = ReplayBuffer.load(npz_path)
    assert buffer.layout.grasp_penalty
    valid = buffer._valid[: buffer._filled]
    return {"gripper": buffer._data["actions"][: buffer._filled][valid][:, -1],
            "penalty": buffer._data["grasp_penalty"][: buffer._filled][valid],
            "dones": buffer._data["dones"][: buffer._filled][valid]}


def test_an_async_hil_serl_run_trains_and_acts_with_the_grasp_critic(local_ray, tmp_path):
    cfg = hil_config(tmp_path / "run", expert_demos=1, intervention="expert", intervention_fraction=0.5)
    assert cfg.grasp_critic == "auto"
    summary = run_async(cfg, two_actors(num_actors=1))

    assert summary.status == "finished" and summary.step == 500 and summary.learner["eval"] is not None
    assert summary.learner["agent"] == summary.actors[0]["agent"] == "GraspSACAgent"
    versions = summary.actors[0]["versions"]
    assert versions == sorted(set(versions)) and versions[-1] > 0  # newer grasp critics reach the actor

    online = saved(f"{summary.checkpoint}/replay.npz")
    assert len(online["penalty"]) == 500
    assert set(online["penalty"].tolist()) == {0.0, PENALTY} and (online["penalty"] != 0).sum() >= 5
    stay = np.abs(online["gripper"]) <= 0.5  # "stay" (or a random value between the thresholds) never toggles
    assert stay.any() and np.all(online["penalty"][stay] == 0)
    # Policy steps act with the grasp critic: their gripper values are its discrete choices (-1, 0, +1), while
    # uniform random steps are continuous and the expert's takeovers are +-1.
    discrete = np.isin(online["gripper"], [-1.0, 0.0, 1.0]).sum()
    assert discrete - summary.learner["intervened"] >= 50

    # Demo buffer: the expert's demo episode first (one grasp, charged once), then the takeovers with their penalty.
    demos = saved(f"{summary.checkpoint}/demos.npz")
    demo_end = int(np.flatnonzero(demos["dones"])[0]) + 1
    assert demos["penalty"][:demo_end].sum() == pytest.approx(PENALTY)
    assert len(demos["penalty"]) == demo_end + summary.learner["intervened"]
    assert (demos["penalty"][demo_end:] != 0).any()


def transitions_with_penalties(actor: Actor, n: int) -> list[dict]:
    """`n` steps of the actor's wrapped env under random actions, as the actor stores them."""
    rng = np.random.default_rng(0)
    obs, _ = actor.env.reset(seed=0)
    out = []
    for _ in range(n):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        next_obs, reward, terminated, truncated, info = actor.env.step(action)
        out.append(make_transition(obs, action, reward, terminated, truncated, next_obs, info["grasp_penalty"]))
        obs = next_obs
    return out


def test_actor_wraps_its_env_and_the_learner_pauses_and_resumes_the_grasp_agent(tmp_path):
    cfg = hil_config(tmp_path / "run", steps=1000, intervention="expert")
    acfg = AsyncConfig(learner_nice=0)  # in-process: keep pytest's priority
    actor = Actor(cfg, acfg, 0)
    assert isinstance(actor.env, GripperHoldWrapper) and isinstance(actor.env.env, GripperPenaltyWrapper)
    assert isinstance(actor.env.env.env, InterventionWrapper) and actor.env.env.penalty == -0.02
    assert isinstance(actor.agent, GraspSACAgent)
    setup = actor.learner_setup()
    assert (setup["grasp_critic"], setup["initial_gripper_closed"]) == (True, False)
    transitions = transitions_with_penalties(actor, 40)
    actor.env.close()
    sent = np.array([t["grasp_penalty"] for t in transitions], np.float32)
    assert (sent != 0).any()

    learner = Learner(cfg, acfg, **setup)
    assert isinstance(learner.agent, GraspSACAgent) and learner.replay.layout.grasp_penalty
    batch = stack_transitions(transitions)
    no_penalty = {k: v for k, v in batch.items() if k != "grasp_penalty"}
    with pytest.raises(ValueError, match="transition is missing key 'grasp_penalty'"):
        learner.add_transitions(0, no_penalty, np.zeros(40, bool), [], version=0)
    intervened = np.arange(40) >= 20
    assert learner.add_transitions(0, batch, intervened, [], version=0)["accepted"] == 40
    with SummaryWriter(str(tmp_path / "tb")) as writer:
        learner._drain(writer)
    for _ in range(3):
        learner.agent.update(learner.replay.sample(32), utd_ratio=2)
    learner.request_stop(checkpoint=True)
    summary = learner.run()
    assert summary["status"] == "paused" and summary["agent"] == "GraspSACAgent"

    # The weights an actor loads carry the grasp critic (not its target): it then picks the learner's gripper.
    weights = learner.get_weights(-1)
    assert any(n.startswith("grasp_critic.") for n in weights.arrays)
    assert not any(n.startswith("target_grasp_critic.") for n in weights.arrays)
    acting = make_agent(dataclasses.replace(cfg, seed=7), *learner.spaces, torch.device("cpu"), grasp_critic=True)
    load_policy_weights(acting, learner.register_actor(0)["weights"])
    obs = batch["observations"]
    np.testing.assert_array_equal(acting.sample_actions(obs, deterministic=True),
                                  learner.agent.sample_actions(obs, deterministic=True))
    plain_kwargs = {k: v for k, v in cfg.agent_kwargs.items() if k != "grasp_critic_network_kwargs"}
    plain = make_agent(dataclasses.replace(cfg, agent_kwargs=plain_kwargs), *learner.spaces, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"has entries \['grasp_critic\..*this agent does not have"):
        load_policy_weights(plain, policy_weights(learner.agent, 3, include_frozen=True))

    resumed = Learner(dataclasses.replace(cfg, resume=True), acfg, **setup)
    assert resumed.resumed and isinstance(resumed.agent, GraspSACAgent) and resumed.state.step == 40
    for name, tensor in learner.agent.state_dict().items():
        torch.testing.assert_close(resumed.agent.state_dict()[name], tensor, rtol=0, atol=0)
    online = saved(f"{summary['checkpoint']}/replay.npz")
    np.testing.assert_array_equal(online["penalty"], sent)
    np.testing.assert_array_equal(saved(f"{summary['checkpoint']}/demos.npz")["penalty"], sent[20:])
    assert resumed.demo_buffer.layout.grasp_penalty and len(resumed.demo_buffer) == 20

    with pytest.raises(ValueError, match="was written by a run with a grasp critic, but this run has "
                                         "grasp_critic='off' on SerlFrankaPickCube-v0"):
        Learner(dataclasses.replace(cfg, resume=True, grasp_critic="off", agent_kwargs=plain_kwargs), acfg,
                setup["observation_space"], setup["action_space"])


def test_grasp_critic_on_for_a_task_without_a_gripper_fails_the_actor(tmp_path):
    cfg = hil_config(tmp_path / "run", env="SerlFrankaPegInsert-v0", grasp_critic="on")
    with pytest.raises(ValueError, match="grasp_critic 'on' needs a task whose action has a gripper dimension; "
                                         "SerlFrankaPegInsert-v0 has none"):
        Actor(cfg, AsyncConfig(), 0)

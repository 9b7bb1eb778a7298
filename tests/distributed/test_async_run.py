"""One learner + two actors on a local Ray (2 CPUs): both actors' transitions reach the buffer exactly once, the
weights they act with get newer, a person's steps reach the demo buffer, and a killed actor comes back."""

import sys
import threading

import numpy as np
import pytest
from async_helpers import named_actor, stored_rows, tiny_config, two_actors, wait_for_step

from serl_agents.distributed import run_async

HUMAN_ACTION = np.array([0.0, 0.0, 0.5, -1.0], np.float32)  # what the scripted "person" commands
HUMAN_FROM = 80  # the person takes over from this step of every 100-step episode


def intervened_env():
    """PickCube with a scripted person driving the last 20 steps of each episode (HIL-SERL's late takeover)."""
    from serl_agents.train import make_env
    from serl_envs.wrappers import InterventionWrapper
    from serl_envs.wrappers.devices import ScriptedDevice

    env = make_env("SerlFrankaPickCube-v0")
    return InterventionWrapper(env, ScriptedDevice(lambda ep, t: HUMAN_ACTION, active=lambda ep, t: t >= HUMAN_FROM))


@pytest.fixture(scope="module", autouse=True)
def pickle_this_module_by_value(local_ray):
    """Ray workers cannot import a test module; ship `intervened_env` by value."""
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def assert_each_transition_stored_once(checkpoint, steps):
    rows, size = stored_rows(f"{checkpoint}/replay.npz")
    assert size == steps
    assert len(np.unique(rows, axis=0)) == steps  # no transition twice


def test_two_actors_fill_one_buffer_with_newer_weights_and_interventions(local_ray, tmp_path):
    cfg = tiny_config(tmp_path / "run", steps=2000)
    summary = run_async(cfg, two_actors(), env_fn=intervened_env)

    assert summary.status == "finished" and summary.step == 2000 and summary.restarts == {0: 0, 1: 0}
    per_actor = {i: a["transitions"] for i, a in summary.learner["actors"].items()}
    assert per_actor[0] > 0 and per_actor[1] > 0 and sum(per_actor.values()) == 2000
    assert_each_transition_stored_once(summary.checkpoint, 2000)
    for i in (0, 1):
        versions = summary.actors[i]["versions"]
        assert versions == sorted(set(versions)) and versions[-1] > 0  # strictly newer weights over the run
        assert len(summary.actors[i]["latencies"]) == len(versions)
    assert summary.updates == summary.learner["version"] and summary.updates > 0

    # The person's steps (the last 20 of each episode) are stored with the person's action, in both buffers.
    replay_rows, _ = stored_rows(f"{summary.checkpoint}/replay.npz")
    human_in_replay = int(np.all(replay_rows[:, -4:] == HUMAN_ACTION, axis=1).sum())
    demo_rows, demo_size = stored_rows(f"{summary.checkpoint}/demos.npz")
    assert demo_size == summary.learner["intervened"] == human_in_replay > 0
    assert np.all(demo_rows[:, -4:] == HUMAN_ACTION)
    assert 0.1 < human_in_replay / 2000 < 0.3


def test_a_killed_actor_is_restarted_with_the_latest_weights(local_ray, tmp_path):
    cfg = tiny_config(tmp_path / "run", steps=1500)
    killed = {}

    def kill_actor_0():
        status, _ = wait_for_step(local_ray, 600)
        killed["version"] = status["version"]
        local_ray.kill(named_actor(local_ray, "serl-actor-0-"), no_restart=False)

    killer = threading.Thread(target=kill_actor_0)
    killer.start()
    summary = run_async(cfg, two_actors(num_actors=1))  # alone, so the run can only finish if it comes back
    killer.join()

    assert summary.status == "finished" and summary.step == 1500
    assert summary.restarts == {0: 1}
    starts = summary.learner["actors"][0]["starts"]
    assert [s["start"] for s in starts] == [1, 2]
    assert starts[1]["first_version"] >= killed["version"]  # came back with the weights of the moment, not v0
    assert summary.actors[0]["start"] == 2
    assert_each_transition_stored_once(summary.checkpoint, 1500)

"""Actors never hang on a lost learner (the LeRobot / SERL failure): a dead learner or one that stops answering
makes every actor stop stepping and fail with a clear error within a bounded time."""

import sys
import time

import pytest
import torch
from async_helpers import tiny_config, two_actors

from serl_agents.distributed import LearnerLostError
from serl_agents.distributed.actor import Actor
from serl_agents.distributed.launcher import AsyncRun
from serl_agents.distributed.weights import policy_weights
from serl_agents.train import make_agent, make_env


class SilentLearner:
    """Registers actors, then never answers again (a hung learner process)."""

    def __init__(self, weights) -> None:
        self.weights = weights

    def register_actor(self, index):
        return {"start": 1, "step": 0, "weights": self.weights}

    def add_transitions(self, *args):
        time.sleep(3600)

    def get_weights(self, have_version):
        time.sleep(3600)


@pytest.fixture(scope="module", autouse=True)
def pickle_this_module_by_value(local_ray):
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def steps_after(ray, actor, seconds: float) -> tuple[int, int]:
    before = ray.get(actor.stats.remote(), timeout=30)["steps"]
    time.sleep(seconds)
    return before, ray.get(actor.stats.remote(), timeout=30)["steps"]


def test_actors_stop_with_a_clear_error_when_the_learner_dies(local_ray, tmp_path):
    acfg = two_actors(timeout_s=10.0)
    run = AsyncRun(tiny_config(tmp_path / "run", steps=100_000), acfg)
    try:
        run.start()
        run.learner.run.remote()
        refs = [actor.run.remote(run.learner) for actor in run.actors]
        while min(local_ray.get(a.stats.remote(), timeout=30)["steps"] for a in run.actors) < 50:
            time.sleep(0.1)
        local_ray.kill(run.learner, no_restart=True)
        # Bound: the next call (within pull_every steps) fails at once; timeout_s covers a hung learner.
        for ref in refs:
            with pytest.raises(LearnerLostError, match=r"actor \d: the learner is gone .*stopped the robot"):
                local_ray.get(ref, timeout=acfg.timeout_s + 30)
        before, after = steps_after(local_ray, run.actors[0], 1.0)
        assert before == after  # no longer stepping
    finally:
        run.shutdown()


def test_an_actor_gives_up_on_a_learner_that_stops_answering(local_ray, tmp_path):
    cfg = tiny_config(tmp_path / "run", random_steps=0)
    acfg = two_actors(num_actors=1, timeout_s=3.0, send_every=10, pull_every=10, max_in_flight=2)
    env = make_env(cfg.env)
    weights = policy_weights(make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu")), 0, True)
    learner = local_ray.remote(max_concurrency=4)(SilentLearner).options(num_cpus=0).remote(weights)
    actor = local_ray.remote(max_concurrency=2)(Actor).options(num_cpus=0.5).remote(cfg, acfg, 0)
    try:
        ref = actor.run.remote(learner)
        with pytest.raises(LearnerLostError, match=r"actor 0: the learner has not answered .* for 3 s; stopped"):
            local_ray.get(ref, timeout=60)
        steps = local_ray.get(actor.stats.remote(), timeout=30)["steps"]
        assert steps > 0 and steps_after(local_ray, actor, 0.5) == (steps, steps)
    finally:
        local_ray.kill(actor)
        local_ray.kill(learner)

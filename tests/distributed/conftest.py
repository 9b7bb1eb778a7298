"""A local Ray (2 CPUs, no dashboard, no token auth) shared by the Ray tests of a session (starting one costs seconds)."""

import os

import pytest


@pytest.fixture(scope="session")
def local_ray():
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["SERL_NO_PROGRESS"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

"""End to end: `serl robot-server --backend twin` in a subprocess, `gym.make("SerlFrankaPegInsertReal-v0")` over HTTP,
the scripted expert, and a server that dies or stalls mid-episode."""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest
from real_server import TARGET, ServerProcess

import serl_envs  # noqa: F401
from serl_envs.experts import make_expert, run_expert_episode
from serl_envs.real.client import RobotConnectionError

TIMEOUT = 1.0  # the station's request timeout


@pytest.fixture(scope="module")
def server(station_file):  # 5x real time: fast, with headroom for the twin on a busy 2-core machine
    srv = ServerProcess("--station", str(station_file), "--speed", "5")
    yield srv
    srv.stop()


def make(server, station_file, **kwargs):
    return gym.make("SerlFrankaPegInsertReal-v0", robot_url=server.url, station=station_file,
                    request_timeout=TIMEOUT, **kwargs)


def test_scripted_expert_inserts_the_peg_through_the_server(server, station_file):
    env = make(server, station_file, obs_mode="state")
    assert env.spec.max_episode_steps == 50 and env.unwrapped.dt == pytest.approx(0.1)
    expert = make_expert(env)
    for seed in range(2):
        obs, reward, info = run_expert_episode(env, expert, seed)
        assert info["is_success"], f"episode {seed}: TCP ended at {obs[:3]}, target {TARGET['position']}"
        assert reward > 0.9
        np.testing.assert_allclose(obs[:3], TARGET["position"], atol=0.01)
    # the state observation ends with the hole pose the station config pins down
    np.testing.assert_allclose(obs[-7:-4], [0.53, 0.04, 0.0], atol=1e-9)
    timing = env.unwrapped.robot.timing()
    assert timing.ticks == 100 and timing.period_jitter_p50_ms >= 0.0
    env.close()


def test_vision_observations_come_from_the_twins_cameras(server, station_file):
    env = make(server, station_file)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["front"].shape == (128, 128, 3) and obs["front"].std() > 1.0  # a rendered scene, not a blank
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    env.close()


def test_an_external_reward_fn_owns_reward_and_success(server, station_file):
    seen = []

    def below_15cm(obs):
        seen.append(obs)
        low = bool(obs["state"][2] < 0.15)
        return float(low), low

    env = make(server, station_file, reward_fn=below_15cm, reward_type="sparse")
    _, info = env.reset(seed=0)
    assert info["is_success"] is False
    down = np.array([0, 0, -1, 0, 0, 0], np.float32)
    terminated = False
    while not terminated and len(seen) < 10:
        obs, reward, terminated, truncated, info = env.step(down)
    assert terminated and reward == 1.0 and info["is_success"] and obs["state"][2] < 0.15
    assert seen[-1] is obs  # the reward was computed on the observation the agent got
    env.close()


def test_a_stalled_server_raises_a_connection_error_within_the_timeout(station_file):
    srv = ServerProcess("--station", str(station_file), "--speed", "10")
    try:
        env = make(srv, station_file, obs_mode="state")
        env.reset(seed=0)
        env.step(np.zeros(6, np.float32))
        os.kill(srv.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(RobotConnectionError, match=f"robot server {srv.url} did not answer .* within 1 s"):
            env.step(np.zeros(6, np.float32))
        assert time.monotonic() - start < 3 * TIMEOUT  # never a hang: one request timeout, plus scheduling
        os.kill(srv.proc.pid, signal.SIGCONT)

        srv.proc.kill()  # now the server is gone for good
        srv.proc.wait()
        start = time.monotonic()
        with pytest.raises(RobotConnectionError, match=f"robot server {srv.url} is unreachable"):
            env.step(np.zeros(6, np.float32))
        assert time.monotonic() - start < 3 * TIMEOUT
        assert isinstance(RobotConnectionError("x"), ConnectionError)
        env.close()
    finally:
        srv.stop()

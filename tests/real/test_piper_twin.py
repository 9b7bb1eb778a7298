"""The Piper on the real-robot path: `serl robot-server --backend twin --arm piper` in a subprocess runs the sim
Piper (6 joints, 70 mm gripper, its own safety boxes and reset poses), and `gym.make("SerlPiperPegInsertReal-v0")`
drives it over HTTP with the scripted expert. Plus the registered Piper real IDs, the Piper station defaults, and
the checks that keep a Panda env off a Piper server (and back)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from real_server import ServerProcess

import serl_envs  # noqa: F401
from serl_envs.experts import make_expert, run_expert_episode
from serl_envs.real import real_env_ids
from serl_envs.real.backends.piper import WORKSPACE as PIPER_REACH
from serl_envs.real.backends.twin import TwinRobot
from serl_envs.real.cli import main_robot_server
from serl_envs.real.config import Pose, station_config
from serl_envs.real.station import station_defaults
from serl_envs.sim.arms.piper import PIPER_MOUNT, Q_HIGH, Q_LOW
from serl_envs.tasks import TASKS
from serl_envs.tasks.peg_insert import INSERTED_TCP_Z, PegInsert
from serl_envs.tasks.pick_cube import PickCube

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: these tests must fail before connecting
PIPER_WIDTH = 0.07  # m, the Piper gripper's full opening


@pytest.fixture(scope="module")
def server():  # the sim task's defaults on the Piper, no station file; 5x real time as the Franka end-to-end test
    srv = ServerProcess("--arm", "piper", "--task", "PegInsert", "--speed", "5")
    yield srv
    srv.stop()


def test_health_and_state_report_the_piper(server):
    health = server.get("/health").json()
    assert (health["backend"], health["arm"], health["n_joints"]) == ("twin", "piper", 6)
    assert health["max_gripper_width"] == pytest.approx(PIPER_WIDTH)
    assert health["safety_box"] == {k: list(getattr(PegInsert.box_for("piper"), k))
                                    for k in ("low", "high", "rot_low", "rot_high")}
    state = server.get("/state").json()
    q = np.array(state["joint_positions"])
    assert q.shape == (6,) and len(state["joint_velocities"]) == 6
    assert np.all(q >= Q_LOW) and np.all(q <= Q_HIGH)
    # the fingers rest on the 25 mm peg, as in the sim env: inside the Piper's stroke, not the Panda's 80 mm
    assert 0.0 < state["gripper_position"] < PIPER_WIDTH
    np.testing.assert_allclose(state["cartesian_position"][:3], PegInsert.home_pos, atol=2e-3)


def test_the_piper_limits_are_enforced_by_the_server(server):
    r = server.post("/move/joints", json={"positions": [0.0] * 7})
    assert r.status_code == 400
    assert r.json()["detail"] == ("joint_positions must have shape (6,), got shape (7,): "
                                  "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]")
    r = server.post("/move/joints", json={"positions": [0.0, 1.6, 0.5, 0.0, 0.9, 0.0]})  # J3 is <= 0 on the Piper
    assert r.status_code == 400 and r.json()["detail"].startswith("joint_positions outside the joint limits at joints [2]")
    r = server.post("/gripper", json={"action": "move", "width": 0.075})  # a Panda width, beyond the Piper's stroke
    assert r.status_code == 400 and r.json()["detail"] == "gripper width must be in [0, 0.07] m, got 0.075"


def test_scripted_expert_inserts_the_peg_with_the_piper(server):
    env = gym.make("SerlPiperPegInsertReal-v0", robot_url=server.url, obs_mode="state", request_timeout=5.0)
    assert env.spec.max_episode_steps == 50 and env.unwrapped.dt == pytest.approx(0.1)
    assert env.unwrapped.robot.max_gripper_width == pytest.approx(PIPER_WIDTH)  # from the server, not hard-coded
    expert = make_expert(env)
    for seed in range(2):
        obs, reward, info = run_expert_episode(env, expert, seed)
        assert info["is_success"], f"episode {seed}: TCP ended at {obs[:3]}"
        assert reward > 0.9
        np.testing.assert_allclose(obs[:3], [0.5, 0.0, INSERTED_TCP_Z], atol=0.01)
    state = server.get("/state").json()
    assert len(state["joint_positions"]) == 6 and 0.0 < state["gripper_position"] < PIPER_WIDTH
    env.close()


def test_an_env_refuses_a_server_of_another_arm(server):
    with pytest.raises(ValueError) as err:
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=server.url)
    assert str(err.value) == (f"the robot server at {server.url} drives a 'piper' arm, this env is for a 'panda' "
                              "arm; start the server with --arm panda or make the env of its arm")


def test_the_registry_lists_the_piper_real_ids():
    ids = real_env_ids()
    assert {"SerlPiperPickCubeReal-v0", "SerlPiperPegInsertReal-v0"} <= set(ids)
    assert [i for i in ids if i.startswith("SerlPiper")] == [f"SerlPiper{task}Real-v0" for task in TASKS]
    spec = gym.spec("SerlPiperPegInsertReal-v0")
    assert spec.kwargs == {"arm": "piper", "task": "PegInsert"} and spec.max_episode_steps == 50
    assert gym.spec("SerlFrankaPegInsertReal-v0").kwargs["arm"] == "panda"


def test_piper_station_defaults_are_the_sim_piper_values():
    pick = station_config(station_defaults("PickCube", "piper"))
    assert pick.safety_box == PickCube.arm_boxes["piper"] != PickCube.box
    # the task's home (z 0.2) is above the Piper's box; a station resets inside its box
    assert pick.reset_pose == Pose((0.45, 0.0, 0.16)) and pick.compliance == PickCube.compliance
    peg = station_config(station_defaults("PegInsert", "piper"))
    assert peg.safety_box == PegInsert.box and peg.reset_pose == Pose(PegInsert.home_pos)
    assert station_config(station_defaults("PickCube", "panda")).safety_box == PickCube.box
    with pytest.raises(ValueError) as err:
        station_defaults("PegInsert", "ur5")
    assert str(err.value) == "unknown real arm 'ur5'; available: ['panda', 'piper']"


def test_a_piper_env_names_its_own_id_when_it_refuses():
    with pytest.raises(ValueError) as err:
        gym.make("SerlPiperPickCubeReal-v0", robot_url=UNREACHABLE)
    assert "e.g. gym.make('SerlPiperPickCubeReal-v0', robot_url=..., reward_fn=my_fn)" in str(err.value)
    with pytest.raises(ValueError) as err:
        gym.make("SerlPiperPegInsertReal-v0", robot_url=UNREACHABLE, reset_pose=[0.5, 0.0, 0.3, 0, 1, 0, 0])
    assert "reset_pose (0.5, 0.0, 0.3) is outside the safety box" in str(err.value)


def test_the_twin_takes_the_piper_workspace_around_its_mount():
    station = station_config(station_defaults("PegInsert", "piper"))
    twin = TwinRobot("PegInsert", station, arm="piper", speed=5.0)
    low, high = np.add(PIPER_MOUNT, PIPER_REACH[0]), np.add(PIPER_MOUNT, PIPER_REACH[1])
    np.testing.assert_allclose(twin.limits.workspace_low, low)
    np.testing.assert_allclose(twin.limits.workspace_high, high)
    assert twin.n_joints == 6 and twin.gripper.max_width == pytest.approx(PIPER_WIDTH)
    twin.connect()
    try:
        with pytest.raises(ValueError, match=r"position \[1.2, 0.0, 0.3\] is outside the twin workspace"):
            twin.set_cartesian_target([1.2, 0.0, 0.3], [0.0, 1.0, 0.0, 0.0])
    finally:
        twin.disconnect()
    with pytest.raises(ValueError) as err:
        TwinRobot("PegInsert", station, arm="ur5")
    assert str(err.value) == "unknown twin arm 'ur5'; available: ['panda', 'piper']"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend", "franka", "--robot-ip", "172.16.0.2", "--arm", "piper"], "--backend franka drives a panda, not --arm piper"),
        (["--backend", "piper", "--arm", "panda"], "--backend piper drives a piper, not --arm panda"),
        (["--arm", "ur5"], "argument --arm: invalid choice: 'ur5' (choose from"),
    ],
)
def test_the_server_cli_refuses_an_arm_its_backend_cannot_drive(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_robot_server(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err

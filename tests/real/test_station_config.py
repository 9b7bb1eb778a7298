"""Station configs from files and kwargs, and what a real env refuses at construction (before any connection)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import yaml

import serl_envs
from serl_envs.real import real_env_ids
from serl_envs.real.config import Pose, StationConfig, station_config
from serl_envs.real.station import fixture_poses, station_defaults, station_task
from serl_envs.tasks import TASKS
from serl_envs.tasks.peg_insert import PegInsert

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: these tests must fail before connecting


def test_real_ids_are_registered_apart_from_the_sim_ids():
    assert real_env_ids() == [f"Serl{arm}{task}Real-v0" for arm in ("Franka", "Piper") for task in TASKS]
    assert {"SerlFrankaPickCubeReal-v0", "SerlFrankaPegInsertReal-v0"} <= set(real_env_ids())
    assert not set(real_env_ids()) & set(serl_envs.sim_env_ids())
    assert gym.spec("SerlFrankaPegInsertReal-v0").max_episode_steps == 50  # 5 s at 10 Hz


def test_defaults_are_the_sim_tasks_values():
    config = station_config(station_defaults("PegInsert"))
    assert config.safety_box == PegInsert.box and config.compliance == PegInsert.compliance
    assert config.reset_pose == Pose(PegInsert.home_pos) and config.control_hz == 10.0
    board_pos, _ = fixture_poses("PegInsert", config)["board"]
    np.testing.assert_allclose(board_pos, [0.5, 0.0, 0.0])


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_then_kwargs_override_the_defaults(tmp_path, suffix):
    data = {"control_hz": 5, "target_pose": [0.52, 0.03, 0.07, 0, 1, 0, 0],
            "compliance": {"translational_stiffness": 3000, "translational_clip": [0.003, 0.003, 0.01]},
            "cameras": {"front": {"size": [64, 64]}, "wrist": None}}
    path = tmp_path / f"station{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    config = station_config(station_defaults("PegInsert"), path, control_hz=20.0)
    assert config.control_hz == 20.0  # kwargs win over the file
    assert config.target_pose == Pose((0.52, 0.03, 0.07), (0.0, 1.0, 0.0, 0.0))
    assert config.compliance.translational_stiffness == 3000 and config.compliance.translational_clip == (0.003, 0.003, 0.01)
    assert [(c.name, c.size) for c in config.cameras] == [("front", (64, 64)), ("wrist", (128, 128))]
    # the board sits under the inserted TCP, and the task's target follows the board's height
    board_pos, _ = fixture_poses("PegInsert", config)["board"]
    np.testing.assert_allclose(board_pos, [0.52, 0.03, 0.01])


@pytest.mark.parametrize(
    "source, message",
    [
        ({"safety_box": {"low": [0, 0, 0], "hihg": [1, 1, 1]}}, "station.safety_box: unknown keys ['hihg']"),
        ({"control_hz": 10, "speed": 3}, "station: unknown keys ['speed']"),
        ({"reset_pose": [0.5, 0.0, 0.16]}, "station.reset_pose: expected 7 numbers x y z qw qx qy qz, got 3"),
        ({"reset_pose": [0.5, 0.0, 0.5, 0, 1, 0, 0]}, "reset_pose (0.5, 0.0, 0.5) is outside the safety box"),
        ({"target_pose": {"position": [0.5, 0, 0.06], "quat": [0, 2, 0, 0]}}, "Pose.quat must be a unit quaternion"),
        ({"limits": {"watchdog_timeout": 0}}, "MotionLimits.watchdog_timeout must be > 0, got 0"),
    ],
)
def test_bad_station_values_name_what_is_wrong(source, message):
    with pytest.raises(ValueError) as err:
        station_config(station_defaults("PegInsert"), source)
    assert message in str(err.value)


def test_a_missing_station_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="station config file .*nope.yaml does not exist"):
        station_config(station_defaults("PegInsert"), tmp_path / "nope.yaml")


def test_the_station_specializes_the_task_class_without_changing_it():
    config = station_config(station_defaults("PegInsert"), safety_box={"low": [0.3, -0.2, 0.1], "high": [0.7, 0.2, 0.3]},
                            reset_pose=[0.5, 0.0, 0.2, 0, 1, 0, 0])
    cls = station_task("PegInsert", config, external_reward=False)
    assert issubclass(cls, PegInsert) and cls.box.low == (0.3, -0.2, 0.1) and cls.home_pos == (0.5, 0.0, 0.2)
    assert PegInsert.box.low == (0.4, -0.1, 0.055)  # the sim task is untouched


def test_pick_cube_refuses_a_real_robot_without_a_reward_fn():
    with pytest.raises(ValueError) as err:
        gym.make("SerlFrankaPickCubeReal-v0", robot_url=UNREACHABLE)
    assert str(err.value) == (
        "PickCube on a real robot: its reward needs the pose of ['cube'], which a real robot cannot observe. Pass a "
        "reward from observations, e.g. gym.make('SerlFrankaPickCubeReal-v0', robot_url=..., reward_fn=my_fn) with "
        "my_fn(obs) -> (reward, success): a learned reward classifier on the camera images, or a human key press."
    )
    with pytest.raises(ValueError, match=r"PickCube on a real robot has no state observation: \['cube'\] cannot be observed"):
        gym.make("SerlFrankaPickCubeReal-v0", robot_url=UNREACHABLE, obs_mode="state", reward_fn=lambda obs: (0.0, False))


def test_cameras_must_match_the_vision_observation():
    with pytest.raises(ValueError, match=r"vision observations need cameras named \['front', 'wrist'\]; the station has \['front'\]"):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE, cameras=[{"name": "front"}])
    with pytest.raises(ValueError, match=r"station.cameras\[1\]: camera 'wrist': options.serial: serial is a camera field"):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE,
                 cameras=[{"name": "front"}, {"name": "wrist", "source": "realsense", "options": {"serial": "123"}}])


def test_an_unreachable_server_is_a_connection_error_naming_the_url():
    from serl_envs.real.client import RobotConnectionError

    with pytest.raises(RobotConnectionError, match=f"robot server {UNREACHABLE} is unreachable"):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE)


def test_station_config_is_frozen_and_takes_a_config_as_source():
    config = station_config(station_defaults("PegInsert"))
    with pytest.raises(AttributeError):
        config.control_hz = 5.0
    again = station_config({}, config, control_hz=5.0)
    assert isinstance(again, StationConfig) and again.control_hz == 5.0 and again.safety_box == config.safety_box

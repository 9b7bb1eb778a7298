"""The env core: the action map, safety box, rewards/termination semantics, rates, and torch-free import."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.compliance import Compliance
from serl_envs.spaces import ActionLayout, ActionMap, ActionScale, SafetyBox
from serl_envs.transforms import quat_from_rotvec, quat_mul, rotvec_from_quat

DOWN = np.array([0.0, 1.0, 0.0, 0.0])


def action_map(rotation=True, gripper=True):
    box = SafetyBox((0.0, -0.5, 0.0), (1.0, 0.5, 1.0), rot_low=(-0.1, -0.1, -0.5), rot_high=(0.1, 0.1, 0.5))
    return ActionMap(ActionLayout(rotation, gripper), ActionScale(linear=1.0, angular=2.0), box, DOWN)


def test_action_map_scales_deltas_by_speed_and_dt():
    amap = action_map()
    pos, quat, grip = amap(np.array([0.5, -1, 0, 0, 0, 1, 1]), np.array([0.5, 0, 0.5]), DOWN, dt=0.1)
    np.testing.assert_allclose(pos, [0.55, -0.1, 0.5])
    np.testing.assert_allclose(amap.relative_rotvec(quat), [0, 0, 0.2], atol=1e-12)
    assert grip == 1.0


def test_out_of_range_actions_are_clipped_to_unit_box():
    amap = action_map()
    pos, _, grip = amap(np.array([5.0, 0, 0, 0, 0, 0, -7]), np.array([0.5, 0, 0.5]), DOWN, dt=0.1)
    np.testing.assert_allclose(pos, [0.6, 0, 0.5])
    assert grip == 0.0


def test_target_is_clipped_to_the_safety_box_in_position_and_rotation():
    amap = action_map()
    tilted = quat_mul(quat_from_rotvec(np.array([0.3, 0.0, 0.9])), DOWN)
    pos, quat, _ = amap(np.zeros(7), np.array([1.2, 0.9, -0.3]), tilted, dt=0.1)
    np.testing.assert_allclose(pos, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(amap.relative_rotvec(quat), [0.1, 0.0, 0.5], atol=1e-9)


def test_layout_without_rotation_keeps_nominal_orientation_and_fixed_gripper():
    amap = ActionMap(ActionLayout(False, False), ActionScale(), SafetyBox((0, 0, 0), (1, 1, 1)), DOWN, fixed_gripper=0.7)
    _, quat, grip = amap(np.zeros(3), np.array([0.5, 0.5, 0.5]), quat_from_rotvec(np.array([0.0, 0.0, 1.0])), 0.05)
    np.testing.assert_array_equal(quat, DOWN)
    assert grip == 0.7


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(6), "action must have shape (7,) ('dx', 'dy', 'dz', 'drx', 'dry', 'drz', 'gripper'), got shape (6,)"),
        (np.array([0, 0, np.nan, 0, 0, np.inf, 0]), "action has non-finite values in ['dz', 'drz']"),
        (object(), "action must be a numeric array of shape (7,)"),
    ],
)
def test_bad_actions_name_the_problem(action, message):
    with pytest.raises(ValueError) as err:
        action_map()(action, np.zeros(3), DOWN, 0.1)
    assert message in str(err.value)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match=r"SafetyBox low \(1, 0, 0\) must be <= high \(0, 1, 1\)"):
        SafetyBox((1, 0, 0), (0, 1, 1))
    with pytest.raises(ValueError, match="Compliance.translational_stiffness must be > 0, got -1"):
        Compliance(translational_stiffness=-1)
    with pytest.raises(ValueError, match="reward_type must be 'dense' or 'sparse', got 'shaped'"):
        gym.make("SerlFrankaPickCube-v0", reward_type="shaped")
    with pytest.raises(ValueError, match=r"control_dt 0.00333+\d* must be a positive multiple of physics_dt 0.002"):
        gym.make("SerlFrankaPickCube-v0", control_hz=300)


def test_rotvec_quat_round_trip():
    rng = np.random.default_rng(0)
    for v in rng.uniform(-1.5, 1.5, (20, 3)):
        np.testing.assert_allclose(rotvec_from_quat(quat_from_rotvec(v)), v, atol=1e-12)


def test_sparse_reward_terminates_on_success_and_dense_does_not():
    from serl_envs.experts import make_expert

    for reward_type, expect_terminated in (("sparse", True), ("dense", False)):
        env = gym.make("SerlFrankaPegInsert-v0", reward_type=reward_type)
        expert = make_expert(env)
        obs, _ = env.reset(seed=4)
        expert.reset()
        rewards, terminated, truncated = [], False, False
        while not (terminated or truncated):
            obs, r, terminated, truncated, info = env.step(expert(obs))
            rewards.append(r)
            if info["is_success"]:
                break
        assert info["is_success"] and terminated == expect_terminated and not truncated
        if reward_type == "sparse":
            assert set(rewards[:-1]) == {0.0} and rewards[-1] == 1.0
        else:
            assert 0.0 < min(rewards) and max(rewards) <= 1.0


def test_runs_at_the_real_robots_10hz():
    env = gym.make("SerlFrankaPickCube-v0", control_hz=10)
    env.reset(seed=0)
    t0 = env.unwrapped.data.time
    env.step(np.zeros(4, np.float32))
    assert env.unwrapped.dt == pytest.approx(0.1) and env.unwrapped.data.time - t0 == pytest.approx(0.1)


def test_truncation_comes_from_the_time_limit_only():
    env = gym.make("SerlFrankaPickCube-v0")
    assert env.spec.max_episode_steps == 100
    env.reset(seed=0)
    for t in range(100):
        _, _, terminated, truncated, _ = env.step(np.zeros(4, np.float32))
        assert not terminated
        assert truncated == (t == 99)


def test_env_package_imports_and_runs_without_torch():
    code = (
        "import sys, gymnasium as gym, serl_envs; e = gym.make('SerlFrankaPegInsert-v0'); e.reset(seed=0);"
        "e.step(e.action_space.sample()); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

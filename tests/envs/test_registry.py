"""Registry-wide conventions (DESIGN §2), run over every registered sim ID: a new task is tested for free."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import serl_envs
from serl_envs.env import SerlEnv

IDS = serl_envs.sim_env_ids()
STATE_IDS = [i for i in IDS if "Vision" not in i]


def make(env_id, **kwargs):
    return gym.make(env_id, disable_env_checker=True, **kwargs)


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs, None, None, None, info)]
    for a in actions:
        out.append(env.step(a))
    return out


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_ids_follow_the_naming_scheme():
    assert "SerlFrankaPickCube-v0" in IDS and "SerlFrankaPegInsertVision-v0" in IDS
    arms = tuple(f"Serl{arm}" for arm in serl_envs.registry.SIM_ARMS)
    for env_id in IDS:
        assert env_id.startswith(arms) and env_id.endswith("-v0")


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make(env_id, render_mode="rgb_array")
        gym_check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env, warn=True)
        env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_follow_conventions(env_id):
    env = make(env_id)
    assert isinstance(env.action_space, gym.spaces.Box)
    assert env.action_space.dtype == np.float32 and env.action_space.shape[0] in (4, 6, 7)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    if "Vision" in env_id:
        space = env.observation_space
        assert set(space.spaces) == {"state", "front", "wrist"}
        assert space["front"].shape == (128, 128, 3) and space["front"].dtype == np.uint8
        assert space["state"].dtype == np.float32
    else:
        assert env.observation_space.dtype == np.float32
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory_and_different_seeds_differ(env_id):
    rng = np.random.default_rng(0)
    env_a, env_b = make(env_id), make(env_id)
    actions = rng.uniform(-1, 1, (15, env_a.action_space.shape[0])).astype(np.float32)
    run_a, run_b = rollout(env_a, 3, actions), rollout(env_b, 3, actions)
    for step_a, step_b in zip(run_a, run_b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            assert_same(x, y)
    # Same env instance, reset again with the same seed: identical again.
    for step_a, step_c in zip(run_a, rollout(env_a, 3, actions), strict=True):
        assert_same(step_a[0], step_c[0])
    first = {s: env_a.reset(seed=s)[0] for s in range(3)}
    state = {s: (o["state"] if isinstance(o, dict) else o) for s, o in first.items()}
    if "Vision" in env_id:  # robot-only state is identical; the images show the randomised scene
        assert not np.array_equal(first[0]["front"], first[1]["front"])
    else:
        assert not np.array_equal(state[0], state[1]) and not np.array_equal(state[1], state[2])
    env_a.close()
    env_b.close()


@pytest.mark.parametrize("env_id", IDS)
def test_info_obs_and_memory_conventions(env_id):
    env = make(env_id)
    obs, info = env.reset(seed=0)
    assert "is_success" in info and isinstance(info["is_success"], bool)
    previous = obs
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert isinstance(info["is_success"], bool) and isinstance(reward, float)
        for key in obs if isinstance(obs, dict) else [None]:
            a = obs[key] if key else obs
            b = previous[key] if key else previous
            assert not np.shares_memory(a, b)
        previous = obs
    env.close()
    env.close()  # closing twice is fine


@pytest.mark.parametrize("env_id", STATE_IDS)
@pytest.mark.parametrize(
    "bad, message",
    [
        ("nan", "action has non-finite values in ['dx']"),
        ("inf", "action has non-finite values in ['dx']"),
        ("shape", "action must have shape"),
        ("text", "action must be a numeric array"),
    ],
)
def test_bad_actions_raise_and_leave_the_env_usable(env_id, bad, message):
    env = make(env_id)
    obs, _ = env.reset(seed=1)
    dim = env.action_space.shape[0]
    action = {
        "nan": np.r_[np.nan, np.zeros(dim - 1)],
        "inf": np.r_[np.inf, np.zeros(dim - 1)],
        "shape": np.zeros(dim + 1),
        "text": "up",
    }[bad]
    data_before = env.unwrapped.data.qpos.copy()
    time_before = env.unwrapped.data.time
    with pytest.raises(ValueError) as err:
        env.step(action)
    assert message in str(err.value)
    np.testing.assert_array_equal(env.unwrapped.data.qpos, data_before)
    assert env.unwrapped.data.time == time_before
    env.step(np.zeros(dim, np.float32))  # still usable


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_commanded_target_never_leaves_the_safety_box(env_id):
    env = make(env_id)
    unwrapped: SerlEnv = env.unwrapped
    rng = np.random.default_rng(1)
    for episode in range(3):
        env.reset(seed=episode)
        for _ in range(60):
            # Extreme and out-of-range actions: they are clipped, and the target stays in the box.
            env.step(rng.choice([-3.0, -1.0, 1.0, 3.0], size=env.action_space.shape).astype(np.float32))
            rotvec = unwrapped.action_map.relative_rotvec(unwrapped.target_quat)
            assert unwrapped.task.box.contains(unwrapped.target_pos, rotvec)


@pytest.mark.parametrize("env_id", IDS)
def test_render_rgb_array_and_lazy_renderer(env_id):
    env = make(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    if "Vision" not in env_id:
        assert not env.unwrapped.robot.renderer_created, "a state ID must never create a renderer"
    env.close()
    env = make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (480, 480, 3) and frame.std() > 1
    env.close()


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_model_hygiene_no_mujoco_warnings_under_control_noise(env_id):
    """Menagerie-style: drive the scene with noise for a while and fail on any MuJoCo warning."""
    env = make(env_id)
    rng = np.random.default_rng(2)
    env.reset(seed=0)
    for _ in range(60):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    assert [w.number for w in env.unwrapped.data.warning] == [0] * len(env.unwrapped.data.warning)
    assert np.all(np.isfinite(env.unwrapped.data.qpos))


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_exposes_model_data_and_dt(env_id):
    env = make(env_id)
    env.reset(seed=0)
    u = env.unwrapped
    t0 = u.data.time
    env.step(np.zeros(env.action_space.shape, np.float32))
    assert u.dt == pytest.approx(0.05)
    assert u.data.time - t0 == pytest.approx(u.dt)
    assert u.model.opt.timestep == pytest.approx(0.002)

"""serl_agents.sb3: SAC and DrQ used exactly where SB3 algorithms are (learn, predict, save/load,
VecEnvs, callbacks, logger, evaluate_policy), with the SERL core and frame-once replay underneath."""

from __future__ import annotations

import csv
import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import serl_envs  # noqa: F401  (registers the IDs)
from serl_agents.replay import ReplayBuffer
from serl_agents.sb3 import SAC, DrQ, SB3ReplayBuffer

# drop-in for SB3 users means no warnings either (SB3's own progress bar is tqdm.rich, flagged experimental)
pytestmark = pytest.mark.filterwarnings("error", "ignore::tqdm.TqdmExperimentalWarning")

STATE_ID, VISION_ID = "SerlFrankaPickCube-v0", "SerlFrankaPickCubeVision-v0"
TINY = {
    "buffer_size": 400,
    "learning_starts": 50,
    "batch_size": 16,
    "utd_ratio": 2,
    "policy_kwargs": {"net_arch": [32, 32]},
    "critic_ensemble_size": 2,
    "device": "cpu",
}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny networks gain nothing from intra-op threads; on a busy machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded_vec_env(env_id: str, seed: int) -> DummyVecEnv:
    vec = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    vec.seed(seed)
    return vec


def observations(env_id: str, count: int) -> list:
    env = gym.make(env_id)
    return [env.reset(seed=seed)[0] for seed in range(count)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """SAC (MlpPolicy) after 150 steps on the state PickCube, saved with its replay buffer."""
    folder = tmp_path_factory.mktemp("sac")
    model = SAC("MlpPolicy", gym.make(STATE_ID), seed=0, **TINY)
    model.learn(total_timesteps=150)
    model.save(folder / "sac.zip")
    model.save_replay_buffer(folder / "replay")
    return model, folder


def test_learn_runs_serl_updates_and_stores_each_frame_once(trained):
    model, _ = trained
    # SB3 trains after every step past learning_starts; each call is one SERL update of utd_ratio steps
    assert model._n_updates == model.agent.step == 150 - TINY["learning_starts"]
    ring = model.replay_buffer.buffers[0]
    assert len(ring) == 150
    assert ring._filled == 152  # 2 episodes (100 + 50 steps) take T + 1 frame slots each, not 2T
    batch = model.replay_buffer.sample(64)
    assert torch.all(batch["masks"] == 1.0)  # dense reward never terminates: time limits bootstrap
    assert model.gamma == 0.99 and model.agent.config.critic_ensemble_size == 2


def test_save_load_gives_identical_predictions_and_training_state(trained):
    model, folder = trained
    loaded = SAC.load(folder / "sac.zip", env=gym.make(STATE_ID), device="cpu")
    obs = np.stack(observations(STATE_ID, 5))
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    # what the next update depends on travels too: optimizer moments, RNG streams, update count
    assert loaded.agent.step == model.agent.step
    for name, rng in model.agent.rngs.items():
        assert torch.equal(rng.get_state(), loaded.agent.rngs[name].get_state()), name
    saved_moments, loaded_moments = (m.agent.optimizer.state_dict()["state"] for m in (model, loaded))
    for index, moments in saved_moments.items():
        for key, value in moments.items():
            assert torch.equal(value, loaded_moments[index][key]), (index, key)
    np.testing.assert_array_equal(model.predict(obs)[0], loaded.predict(obs)[0])  # stochastic too
    loaded.load_replay_buffer(folder / "replay")
    assert loaded.replay_buffer.size() == 150


def test_evaluate_policy_same_mean_reward_after_round_trip(trained):
    model, folder = trained
    loaded = SAC.load(folder / "sac.zip", device="cpu")  # no env: enough to act
    before = evaluate_policy(model, seeded_vec_env(STATE_ID, 3), n_eval_episodes=2)
    after = evaluate_policy(loaded, seeded_vec_env(STATE_ID, 3), n_eval_episodes=2)
    assert before == after


def test_drq_multi_input_round_trip(tmp_path):
    env = gym.make(VISION_ID)
    model = DrQ(
        "MultiInputPolicy",
        env,
        seed=0,
        **{**TINY, "buffer_size": 100, "learning_starts": 36, "batch_size": 4},
        encoder_kwargs={"bottleneck_dim": 16},
    )
    assert model.gamma == 0.96  # SERL's DrQ recipe, not SB3's 0.99
    model.learn(total_timesteps=40)
    assert model.agent.step == 4
    ring = model.replay_buffer.buffers[0]
    assert ring._obs["front"].shape[1:] == (128, 128, 3) and ring._filled == 41  # channel-last, once
    model.save(tmp_path / "drq.zip")
    loaded = DrQ.load(tmp_path / "drq.zip", env=env, device="cpu")
    for obs in observations(VISION_ID, 2):
        np.testing.assert_array_equal(
            model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
        )


def test_callbacks_logger_and_progress_bar(tmp_path):
    model = SAC("MlpPolicy", gym.make(STATE_ID), seed=1, **TINY)
    model.set_logger(configure(str(tmp_path / "log"), ["stdout", "csv", "tensorboard"]))
    checkpoints = CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt"))
    evaluation = EvalCallback(Monitor(gym.make(STATE_ID)), eval_freq=100, n_eval_episodes=1, warn=False)
    model.learn(total_timesteps=100, callback=CallbackList([checkpoints, evaluation]), progress_bar=True)

    saved = sorted(path.name for path in (tmp_path / "ckpt").iterdir())
    assert saved == ["rl_model_100_steps.zip", "rl_model_50_steps.zip"]
    # the callback fires after the env step, before that step's update: 49 of the run's 50 updates
    restored = SAC.load(tmp_path / "ckpt" / "rl_model_100_steps.zip", device="cpu")
    assert (restored.agent.step, model.agent.step) == (49, 50)
    model.logger.close()
    with (tmp_path / "log" / "progress.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    success = [row["eval/success_rate"] for row in rows if row.get("eval/success_rate")]
    assert success and all(0.0 <= float(value) <= 1.0 for value in success)
    assert any(row.get("train/critic_loss") for row in rows)
    assert list((tmp_path / "log").glob("events.out.tfevents.*"))


def test_subproc_vec_env_of_two(tmp_path):
    env_fn = functools.partial(gym.make, f"serl_envs:{STATE_ID}")
    vec = make_vec_env(env_fn, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        model = SAC("MlpPolicy", vec, seed=0, **{**TINY, "learning_starts": 40})
        model.learn(total_timesteps=120)
        assert model.num_timesteps == 120 and model.agent.step == 40  # steps 42, 44, ..., 120
        assert [len(ring) for ring in model.replay_buffer.buffers] == [60, 60]  # one ring per env
        model.save(tmp_path / "sac.zip")
    finally:
        vec.close()
    loaded = SAC.load(tmp_path / "sac.zip", env=seeded_vec_env(STATE_ID, 0), device="cpu")
    assert loaded.n_envs == 1


def test_demo_buffer_supplies_its_share_of_each_batch():
    env = gym.make(STATE_ID)
    demos = ReplayBuffer(env.observation_space, env.action_space, capacity=64, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = env.action_space.sample()
        next_obs, _, _, _, _ = env.step(action)
        demos.insert(
            {
                "observations": obs,
                "actions": action,
                "rewards": 7.0,
                "masks": 1.0,
                "dones": False,
                "next_observations": next_obs,
            }
        )
        obs = next_obs
    model = SAC(
        "MlpPolicy", env, seed=0, demo_buffer=demos, demo_fraction=0.25, **{**TINY, "learning_starts": 1000}
    )
    model.learn(total_timesteps=30)  # no update yet: fills the online buffer only
    rewards = model._sample(32)["rewards"]
    assert torch.all(rewards[:8] == 7.0) and not torch.any(rewards[8:] == 7.0)


def test_sb3_arguments_set_the_agent_config():
    model = SAC("MlpPolicy", gym.make(STATE_ID), gamma=0.9, tau=0.02, learning_rate=1e-3, **TINY)
    config = model.agent.config
    assert (config.discount, config.soft_target_update_rate) == (0.9, 0.02)
    assert config.actor_lr == config.critic_lr == config.temperature_lr == 1e-3
    assert (model.gamma, model.tau, model.learning_rate) == (0.9, 0.02, 1e-3)
    assert config.policy_network.hidden_dims == (32, 32)


def test_replay_adapter_masks_only_real_terminations():
    """Env 0 hit its time limit (bootstrap through it: mask 1), env 1 terminated (mask 0)."""
    space = spaces.Box(-1, 1, (3,), np.float32)
    buffer = SB3ReplayBuffer(8, space, spaces.Box(-1, 1, (2,), np.float32), n_envs=2, seed=0)
    obs, next_obs = np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)
    infos = [{"TimeLimit.truncated": True}, {"TimeLimit.truncated": False}]
    buffer.add(obs, next_obs, np.zeros((2, 2)), np.array([1.0, 2.0]), np.array([True, True]), infos)
    truncated, terminated = (ring.sample(1) for ring in buffer.buffers)
    assert float(truncated["masks"][0]) == 1.0 and float(terminated["masks"][0]) == 0.0
    assert bool(truncated["dones"][0]) and bool(terminated["dones"][0])
    assert buffer.size() == 2


def test_errors_name_the_problem():
    state_env, vision_env = gym.make(STATE_ID), gym.make(VISION_ID)
    with pytest.raises(
        ValueError,
        match=r"SAC takes state observations; this env has camera images \['front', 'wrist'\]: use DrQ",
    ):
        SAC("MultiInputPolicy", vision_env, **TINY)
    with pytest.raises(ValueError, match="DrQ needs camera images .*: use SAC"):
        DrQ("MlpPolicy", state_env, **TINY)
    with pytest.raises(ValueError, match="MultiInputPolicy needs a Dict observation space.*use MlpPolicy"):
        SAC("MultiInputPolicy", state_env, **TINY)
    with pytest.raises(ValueError, match=r"unsupported policy_kwargs \['activation_fn'\]"):
        SAC("MlpPolicy", state_env, **{**TINY, "policy_kwargs": {"activation_fn": torch.nn.ReLU}})
    with pytest.raises(ValueError, match=r"\['discount'\] given twice"):
        SAC("MlpPolicy", state_env, gamma=0.9, discount=0.8, **TINY)
    with pytest.raises(ValueError, match="learning_rate must be a float or None here, not a schedule"):
        SAC("MlpPolicy", state_env, learning_rate=lambda progress: 1e-3, **TINY)
    with pytest.raises(
        ValueError, match=r"SB3 SAC arguments not supported here: 'action_noise': exploration"
    ):
        SAC("MlpPolicy", state_env, action_noise=object(), **TINY)
    with pytest.raises(ValueError, match=r"unknown SACConfig options \['critic_count'\]"):
        SAC("MlpPolicy", state_env, critic_count=3, **TINY)

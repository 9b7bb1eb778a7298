"""record-demos writes Minari datasets that Minari loads, that match the env exactly, that survive a SIGKILL,
and that `load_demos` turns into replay-buffer transitions."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import gymnasium as gym
import minari
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.demos import DemoWriter, load_demos, open_demos
from serl_envs.record import RecordConfig, main_record_demos, record_demos, record_episode
from serl_envs.wrappers import InterventionWrapper
from serl_envs.wrappers.devices import ExpertDevice
from serl_envs.wrappers.devices.base import EventLatch


def record(out, env_id, episodes, *extra):
    assert (
        main_record_demos(
            ["--env", env_id, "--device", "expert", "--episodes", str(episodes), "--out", str(out), *extra]
        )
        == 0
    )


@pytest.mark.parametrize("env_id", ["SerlFrankaPickCube-v0", "SerlFrankaPickCubeVision-v0"])
def test_expert_demos_load_with_minari_and_match_the_env_exactly(env_id, tmp_path, monkeypatch):
    record(tmp_path / "pick-v0", env_id, 5)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset("pick-v0")
    env = gym.make(env_id)
    assert dataset.total_episodes == 5 and dataset.total_steps == 500
    assert dataset.observation_space == env.observation_space and dataset.action_space == env.action_space
    assert dataset.recover_environment().spec.id == env_id
    metadata = list(dataset.storage.get_episode_metadata(range(5)))
    assert [bool(m["success"]) for m in metadata] == [True] * 5
    for episode, meta in zip(dataset.iterate_episodes(), metadata, strict=True):
        assert episode.infos["is_success"][-1] and episode.infos["intervened"][1:].all()
        # replaying the recorded actions from the recorded seed reproduces every observation bit for bit,
        # images included: the storage is lossless
        obs, _ = env.reset(seed=int(meta["seed"]))
        for t in range(len(episode) + 1):
            stored = (
                {k: v[t] for k, v in episode.observations.items()}
                if isinstance(obs, dict)
                else episode.observations[t]
            )
            assert env.observation_space.contains(stored)
            if isinstance(obs, dict):
                assert all(np.array_equal(obs[k], stored[k]) for k in obs)
            else:
                np.testing.assert_array_equal(obs, stored)
            if t < len(episode):
                assert env.action_space.contains(episode.actions[t])
                obs, reward, *_ = env.step(episode.actions[t])
                assert reward == episode.rewards[t]


def test_load_demos_fills_a_replay_buffer(tmp_path):
    from serl_agents.replay import ReplayBuffer

    record(tmp_path / "demos", "SerlFrankaPickCubeVision-v0", 2)
    transitions = load_demos(tmp_path / "demos")
    assert len(transitions) == 200
    assert (
        [t["dones"] for t in transitions].count(True) == 2
        and transitions[99]["dones"]
        and transitions[199]["dones"]
    )
    assert all(t["masks"] == 1.0 for t in transitions)  # dense PickCube never terminates
    assert transitions[0]["next_observations"]["front"] is not None
    np.testing.assert_array_equal(
        transitions[1]["observations"]["wrist"], transitions[0]["next_observations"]["wrist"]
    )
    env = gym.make("SerlFrankaPickCubeVision-v0")
    buffer = ReplayBuffer(env.observation_space, env.action_space, capacity=500, seed=0)
    buffer.extend(transitions)
    assert len(buffer) == 200


def test_sigkill_mid_episode_keeps_completed_episodes_and_resume_completes(tmp_path):
    out = tmp_path / "pick-v0"
    cmd = [sys.executable, "-m", "serl_envs.record", "--env", "SerlFrankaPickCube-v0", "--device", "expert",
           "--episodes", "50", "--out", str(out), "--realtime"]  # fmt: skip
    # at the real 20 Hz an episode takes 5 s, so a kill 1 s after a save lands inside the next episode
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith("recording SerlFrankaPickCube-v0 with the expert")
        line = proc.stdout.readline()
        assert line.startswith("episode 0 saved"), line
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    dataset = open_demos(out)
    assert dataset.total_episodes == 1 and len(dataset[0]) == 100
    record(out, "SerlFrankaPickCube-v0", 3)  # the same command resumes: records only what is missing
    dataset = open_demos(out)
    assert dataset.total_episodes == 3 and dataset.total_steps == 300
    seeds = [int(m["seed"]) for m in dataset.storage.get_episode_metadata(range(3))]
    assert len(set(seeds)) == 3  # resumed attempts do not repeat the saved episode's seed
    assert json.loads((out / "data" / "metadata.json").read_text())["serl_attempts"] >= 3


class ExpertThatGivesUp(ExpertDevice):
    """The expert drives, and the 'person' marks failure at step 10."""

    def __init__(self, env):
        super().__init__(env)
        self.latch = EventLatch()

    def read(self):
        if self.step == 10:
            self.latch.mark("failure")
        return super().read()

    def events(self):
        return self.latch.drain()


def test_human_marks_label_and_end_episodes_and_failures_are_filtered(tmp_path):
    env = gym.make("SerlFrankaPickCube-v0")
    wrapped = InterventionWrapper(env, ExpertThatGivesUp(env))
    writer = DemoWriter(tmp_path / "mixed", env.observation_space, env.action_space, env.spec)
    failed = record_episode(wrapped, seed=0)
    assert not failed.success and len(failed) == 11 and failed.truncations[-1] and not failed.terminations[-1]
    expert = InterventionWrapper(env, ExpertDevice(env))
    writer.append(failed)
    writer.append(record_episode(expert, seed=1))
    assert len(load_demos(tmp_path / "mixed")) == 100
    assert len(load_demos(tmp_path / "mixed", successes_only=False)) == 111


def test_reopening_with_other_spaces_or_env_is_refused(tmp_path):
    record(tmp_path / "d", "SerlFrankaPickCube-v0", 1)
    other = gym.make("SerlFrankaPegInsert-v0")
    with pytest.raises(ValueError, match="holds a dataset with another observation_space"):
        DemoWriter(tmp_path / "d", other.observation_space, other.action_space)
    spec = gym.spec("SerlFrankaPickCube-v0")  # same spaces, another ID
    gym.register("SerlTestAlias-v0", entry_point=spec.entry_point, max_episode_steps=100, kwargs=spec.kwargs)
    try:
        with pytest.raises(ValueError, match="holds demos of SerlFrankaPickCube-v0, not SerlTestAlias-v0"):
            record_demos(RecordConfig("SerlTestAlias-v0", "expert", 2, tmp_path / "d"))
    finally:
        del gym.registry["SerlTestAlias-v0"]
    assert open_demos(tmp_path / "d").total_episodes == 1
    with pytest.raises(FileNotFoundError, match="no demo dataset at"):
        load_demos(tmp_path / "missing")
    with pytest.raises(SystemExit):
        main_record_demos(
            ["--env", "SerlFrankaPickCube-v0", "--device", "joystick", "--out", str(tmp_path / "x")]
        )
    assert os.listdir(tmp_path) == ["d"]


def test_every_state_a_kill_can_leave_is_loadable_and_repaired(tmp_path):
    """The on-disk states between DemoWriter's atomic steps: each loads consistently and re-opening repairs it."""
    import h5py
    from minari.dataset.minari_storage import MinariStorage

    env = gym.make("SerlFrankaPickCube-v0")
    expert = InterventionWrapper(env, ExpertDevice(env))
    episodes = [record_episode(expert, seed=s) for s in range(3)]
    scratch = DemoWriter(tmp_path / "scratch", env.observation_space, env.action_space)
    scratch.append(episodes[0])
    scratch.append(episodes[1])
    path, data = tmp_path / "d", tmp_path / "d" / "data"
    DemoWriter(path, env.observation_space, env.action_space, env.spec).append(episodes[0])
    # killed while writing episode 1's file: a partial temp file
    (data / "episode_000001.hdf5.tmp").write_bytes(b"\x89HDF partial")
    assert open_demos(path).total_episodes == 1
    # killed after the episode file was renamed into place, before the link file was replaced
    shutil.copy(tmp_path / "scratch" / "data" / "episode_000001.hdf5", data / "episode_000001.hdf5")
    assert open_demos(path).total_episodes == 1
    # killed after the link file was replaced, before the metadata: Minari counts by the metadata
    with h5py.File(data / "main_data.hdf5", "a") as f:
        f["episode_1"] = h5py.ExternalLink("episode_000001.hdf5", "/episode_1")
    assert open_demos(path).total_episodes == 1
    writer = DemoWriter(path, env.observation_space, env.action_space, env.spec)  # re-opening repairs
    assert writer.num_episodes == 2 and writer.metadata["total_steps"] == 200
    assert writer.append(episodes[2]) == 2
    dataset = open_demos(path)
    assert dataset.total_episodes == 3 and dataset.total_steps == 300
    assert [int(m["seed"]) for m in dataset.storage.get_episode_metadata(range(3))] == [0, 1, 2]
    # killed while the dataset was being created: Minari's metadata and an empty link file, nothing else
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    MinariStorage.new(fresh / "data", env.observation_space, env.action_space, jpeg_encoding=False)
    writer = DemoWriter(fresh, env.observation_space, env.action_space, env.spec)
    writer.append(episodes[0])
    assert open_demos(fresh).total_episodes == 1 and writer.metadata["dataset_id"] == "fresh-v0"

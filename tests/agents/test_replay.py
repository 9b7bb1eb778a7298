"""Replay buffer: frames stored once, exact contents across episode ends and ring wrap-around,
seeded sampling, 50/50 mixing, atomic pickle-free save/load, and validation errors."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from gymnasium import spaces

from serl_agents.replay import MixedSampler, ReplayBuffer
from serl_agents.replay import io as replay_io

H = W = 8
OBS_SPACE = spaces.Dict(
    {
        "front": spaces.Box(0, 255, (H, W, 3), np.uint8),
        "wrist": spaces.Box(0, 255, (H, W, 3), np.uint8),
        "state": spaces.Box(-np.inf, np.inf, (7,), np.float32),
    }
)
ACT_SPACE = spaces.Box(-1, 1, (4,), np.float32)
FRAME_BYTES = 2 * H * W * 3


def frame(uid: int) -> dict[str, np.ndarray]:
    """An observation whose every entry encodes ``uid``, so a sampled frame names its origin."""
    return {
        "front": np.full((H, W, 3), uid % 251, np.uint8),
        "wrist": np.full((H, W, 3), (uid * 7) % 251, np.uint8),
        "state": np.full(7, uid, np.float32),
    }


def make_episodes(lengths: list[int], truncate_last: bool = False) -> list[dict]:
    """Transitions with unique frames; action[0] is the transition id. Episodes end terminated
    (mask 0), except the last one, which is truncated (mask 1) when ``truncate_last``."""
    out, uid = [], 0
    for e, n in enumerate(lengths):
        for t in range(n):
            last = t == n - 1
            terminated = last and not (truncate_last and e == len(lengths) - 1)
            out.append(
                {
                    "observations": frame(uid + t),
                    "actions": np.array([len(out), 0.5, -0.5, t], np.float32) / 1000,
                    "rewards": float(len(out)),
                    "masks": 0.0 if terminated else 1.0,
                    "dones": last,
                    "next_observations": frame(uid + t + 1),
                }
            )
        uid += n + 1
    return out


def ids(batch: dict) -> list[int]:
    return [round(float(a) * 1000) for a in batch["actions"][:, 0]]


def assert_matches(batch: dict, inserted: list[dict]) -> None:
    """Every sampled row equals, exactly, the inserted transition its action id names."""
    for row, tid in enumerate(ids(batch)):
        t = inserted[tid]
        for key in ("observations", "next_observations"):
            for k, v in t[key].items():
                np.testing.assert_array_equal(batch[key][k][row].numpy(), v)
        np.testing.assert_array_equal(batch["actions"][row].numpy(), t["actions"])
        assert batch["rewards"][row].item() == t["rewards"]
        assert batch["masks"][row].item() == t["masks"]
        assert batch["dones"][row].item() == t["dones"]


def filled(capacity: int, transitions: list[dict], seed: int = 0) -> ReplayBuffer:
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, capacity, seed=seed)
    for t in transitions:
        buf.insert(t)
    return buf


def test_frames_are_stored_once():
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, capacity=1000, seed=0)
    per_slot_extra = 7 * 4 + 4 * 4 + 4 + 4 + 1 + 1  # state, action, reward, mask, done, valid flag
    assert buf.nbytes == 1000 * (FRAME_BYTES + per_slot_extra)  # one frame per slot, no next_obs copy
    # An episode of T transitions needs T + 1 slots: all 9 fit in 10 slots.
    assert len(filled(10, make_episodes([9]))) == 9
    # 110 ten-step episodes (11 slots each) into 1000 slots: the last 90 episodes survive whole, and the
    # 10 remaining slots hold the last 10 frames of the episode before = 9 of its transitions.
    assert len(filled(1000, make_episodes([10] * 110))) == 909


def test_samples_equal_inserted_transitions_across_episode_ends():
    inserted = make_episodes([3, 1, 4, 2], truncate_last=True)
    buf = filled(64, inserted)
    assert len(buf) == 10
    batch = buf.sample(400)
    assert_matches(batch, inserted)
    assert set(ids(batch)) == set(range(10))
    terminal = [i for i, t in enumerate(inserted) if t["dones"]]
    assert set(terminal) <= set(ids(batch))  # terminal next observations are kept and sampled


def test_wrap_around_keeps_exactly_the_transitions_whose_frames_survive():
    # Hand-worked case: capacity 5, episodes of 2 steps (3 slots each).
    inserted = make_episodes([2] * 3)
    buf = filled(5, inserted[:4])
    # Slots: ep0 at 0,1,2; ep1 at 3,4,0 -> overwriting slot 0 removes transition 0.
    assert len(buf) == 3
    assert set(ids(buf.sample(200))) == {1, 2, 3}
    buf.insert(
        inserted[4]
    )  # slots 1, 2: removes transition 1 (obs) and transition 2 (its obs slot 3 untouched)
    buf.insert(inserted[5])  # slot 3 takes ep2's 2nd next frame: transition 2 loses its obs
    assert len(buf) == 3
    batch = buf.sample(200)
    assert set(ids(batch)) == {3, 4, 5}
    assert_matches(batch, inserted)


@pytest.mark.parametrize("lengths", [[50], [3] * 30, [1] * 40, [4, 7, 1, 9, 2, 6] * 4])
def test_long_runs_only_sample_intact_transitions(lengths):
    inserted = make_episodes(lengths)
    buf = filled(8, inserted)
    batch = buf.sample(500)
    assert_matches(batch, inserted)  # a transition with an overwritten next frame would mismatch here
    # The ring evicts in insertion order, so what remains is the newest len(buf) transitions.
    assert set(ids(batch)) == set(range(len(inserted) - len(buf), len(inserted)))
    if lengths == [50]:
        assert len(buf) == 7  # 8 slots hold 8 consecutive frames = 7 transitions


def test_non_contiguous_insert_without_done_keeps_previous_next_observation():
    inserted = make_episodes([2, 2])
    for t in inserted:  # time-limited episodes whose caller forgot to flag the ends
        t["dones"], t["masks"] = False, 1.0
    buf = filled(16, inserted)
    assert len(buf) == 4
    assert_matches(buf.sample(100), inserted)


def test_seeded_sampling_is_deterministic_and_uses_no_global_rng():
    inserted = make_episodes([5, 6])
    a, b, c = filled(32, inserted, seed=3), filled(32, inserted, seed=3), filled(32, inserted, seed=4)
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 -- perturb the global RNG on purpose: the buffer must not use it
    first = a.sample(16)
    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002
    second = b.sample(16)
    assert ids(first) == ids(second)
    assert ids(first) != ids(c.sample(16))


def test_images_stay_uint8_channel_last():
    buf = filled(32, make_episodes([5]))
    batch = buf.sample(6)
    for key in ("observations", "next_observations"):
        assert batch[key]["front"].dtype == torch.uint8
        assert batch[key]["front"].shape == (6, H, W, 3)
        assert batch[key]["state"].dtype == torch.float32
    assert batch["rewards"].shape == batch["masks"].shape == batch["dones"].shape == (6,)
    assert batch["dones"].dtype == torch.bool and batch["masks"].dtype == torch.float32
    assert all(t.device == torch.device("cpu") for t in (batch["actions"], batch["rewards"]))


def test_box_observations_and_torch_inputs():
    buf = ReplayBuffer(spaces.Box(-1, 1, (3,), np.float32), ACT_SPACE, 10, seed=0)
    buf.insert(
        {
            "observations": torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64),
            "actions": torch.zeros(4),
            "rewards": torch.tensor(1.0),
            "masks": 1.0,
            "dones": np.array([True]),
            "next_observations": [0.4, 0.5, 0.6],
        }
    )
    batch = buf.sample(2)
    assert batch["observations"].dtype == torch.float32
    assert torch.equal(batch["next_observations"][0], torch.tensor([0.4, 0.5, 0.6]))


def test_extend_and_insert_batch_equal_single_inserts():
    inserted = make_episodes([3, 4])
    one = filled(32, inserted, seed=5)
    ext = ReplayBuffer(OBS_SPACE, ACT_SPACE, 32, seed=5)
    ext.extend(inserted)
    stacked = {
        k: (
            {kk: np.stack([t[k][kk] for t in inserted]) for kk in inserted[0][k]}
            if k.endswith("observations")
            else np.stack([t[k] for t in inserted])
        )
        for k in inserted[0]
    }
    bat = ReplayBuffer(OBS_SPACE, ACT_SPACE, 32, seed=5)
    bat.insert_batch(stacked)
    expected = ids(one.sample(50))
    assert ids(ext.sample(50)) == expected and ids(bat.sample(50)) == expected


def bad_transition(**changes) -> dict:
    t = make_episodes([2])[0]
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            t[outer] = {k: v for k, v in t[outer].items() if k != inner}
            if value is not None:
                t[outer][inner] = value
        elif value is None:
            del t[key]
        else:
            t[key] = value
    return t


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"masks": None},
            "transition is missing key 'masks'; expected keys ['observations', 'actions', 'rewards', "
            "'masks', 'dones', 'next_observations']",
        ),
        (
            {"observations.wrist": None},
            "observations is missing key 'wrist'; expected keys ['front', 'state', 'wrist']",
        ),
        (
            {"next_observations.front": np.zeros((4, 4, 3), np.uint8)},
            "next_observations['front'] has shape (4, 4, 3), expected (8, 8, 3)",
        ),
        (
            {"observations.front": np.zeros((H, W, 3), np.float32)},
            "observations['front'] has dtype float32, expected uint8 images of shape (8, 8, 3)",
        ),
        ({"rewards": float("nan")}, "rewards contains NaN or inf, expected finite values of shape ()"),
        (
            {"actions": np.array([0, np.nan, 0, 0], np.float32)},
            "actions contains NaN or inf, expected finite values of shape (4,)",
        ),
        ({"actions": np.zeros(3, np.float32)}, "actions has shape (3,), expected (4,)"),
        ({"masks": 0.0}, "masks=0 (terminated) requires dones=True; dones marks every episode end"),
        ({"info": {}}, "transition has unknown key 'info'"),
    ],
)
def test_bad_transition_raises_and_leaves_buffer_unchanged(changes, message):
    t = bad_transition(**changes)
    inserted = make_episodes([3])
    buf, twin = filled(16, inserted, seed=1), filled(16, inserted, seed=1)
    with pytest.raises(ValueError, match=re.escape(message)):
        buf.insert(t)
    assert len(buf) == len(twin)
    assert ids(buf.sample(20)) == ids(twin.sample(20))


def test_bad_row_in_a_batch_inserts_nothing():
    inserted = make_episodes([4])
    bad = [dict(t) for t in inserted]
    bad[2] = {**bad[2], "rewards": float("inf")}
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=0)
    with pytest.raises(ValueError, match=re.escape("rewards contains NaN or inf")):
        buf.extend(bad)
    assert len(buf) == 0
    with pytest.raises(ValueError, match=re.escape("cannot sample from an empty ReplayBuffer")):
        buf.sample(1)


def test_bad_spaces_and_capacity():
    with pytest.raises(
        ValueError, match=re.escape("observation_space['cam'] is Discrete, expected a gymnasium.spaces.Box")
    ):
        ReplayBuffer(spaces.Dict({"cam": spaces.Discrete(3)}), ACT_SPACE, 10)
    with pytest.raises(ValueError, match=re.escape("action_space is Discrete")):
        ReplayBuffer(OBS_SPACE, spaces.Discrete(3), 10)
    with pytest.raises(
        ValueError, match=re.escape("capacity must be an integer >= 2 (observation slots), got 1")
    ):
        ReplayBuffer(OBS_SPACE, ACT_SPACE, 1)


def tagged(tag: int, n: int, seed: int) -> ReplayBuffer:
    inserted = make_episodes([n])
    for t in inserted:
        t["rewards"] = float(tag)
    return filled(64, inserted, seed=seed)


@pytest.mark.parametrize(
    ("fractions", "batch", "counts"),
    [((0.5, 0.5), 256, (128, 128)), ((0.5, 0.5), 7, (4, 3)), ((0.25, 0.75), 10, (3, 7))],
)
def test_mixed_sampler_exact_split(fractions, batch, counts):
    demo, online = tagged(1, 5, seed=0), tagged(0, 9, seed=1)
    out = MixedSampler([demo, online], fractions).sample(batch)
    rewards = out["rewards"].tolist()
    assert rewards == [1.0] * counts[0] + [0.0] * counts[1]
    assert out["observations"]["front"].shape == (batch, H, W, 3)
    assert out["next_observations"]["state"].shape == (batch, 7)


def test_mixed_sampler_chunks_keep_the_split_in_every_minibatch():
    """SERL's high-UTD update cuts the batch into utd_ratio minibatches: each must hold its share of demos."""
    from serl_agents.batch import split_batch

    def sample(chunks):
        demo, online = tagged(1, 5, seed=0), tagged(0, 9, seed=1)
        return MixedSampler([demo, online], (0.5, 0.5)).sample(256, chunks=chunks)

    whole, chunked = sample(1), sample(4)
    for minibatch in split_batch(chunked, 4):
        assert minibatch["rewards"].tolist() == [1.0] * 32 + [0.0] * 32
    assert split_batch(whole, 4)[0]["rewards"].tolist() == [1.0] * 64  # unchunked: the first minibatch is all demos
    # the same rows are drawn, only ordered by chunk
    order = [*range(0, 32), *range(128, 160)]
    assert torch.equal(chunked["observations"]["front"][:64], whole["observations"]["front"][order])
    with pytest.raises(ValueError, match=re.escape("chunks must be a positive divisor of batch_size 256, got 3")):
        MixedSampler([tagged(1, 5, seed=0)], (1.0,)).sample(256, chunks=3)


def test_mixed_sampler_errors():
    demo, empty = tagged(1, 5, seed=0), ReplayBuffer(OBS_SPACE, ACT_SPACE, 8)
    with pytest.raises(ValueError, match=re.escape("fractions must sum to 1, got 0.9 from [0.5, 0.4]")):
        MixedSampler([demo, demo], [0.5, 0.4])
    with pytest.raises(ValueError, match=re.escape("got 1 fractions for 2 buffers; expected one per buffer")):
        MixedSampler([demo, demo], [1.0])
    with pytest.raises(
        ValueError, match=re.escape("buffer 1 is empty; it must hold transitions to supply 2 of 4 rows")
    ):
        MixedSampler([demo, empty]).sample(4)
    other = ReplayBuffer(spaces.Box(-1, 1, (3,), np.float32), ACT_SPACE, 8)
    with pytest.raises(ValueError, match=re.escape("buffer 1 has observation_space Box(")):
        MixedSampler([demo, other])


def assert_same_batch(a: dict, b: dict) -> None:
    for key in a:
        if isinstance(a[key], dict):
            for k in a[key]:
                assert torch.equal(a[key][k], b[key][k])
        else:
            assert torch.equal(a[key], b[key])


def test_save_load_round_trip(tmp_path):
    inserted = make_episodes([6, 3, 5])
    buf = filled(8, inserted, seed=2)  # wrapped around
    buf.sample(10)  # advance the RNG: load must continue from here
    path = tmp_path / "buffer.npz"
    buf.save(path)
    with np.load(path, allow_pickle=False) as z:  # plain npz, readable without pickle
        assert "meta.json" in z.files
    loaded = ReplayBuffer.load(path)
    assert len(loaded) == len(buf) and loaded.capacity == 8
    assert loaded.observation_space == OBS_SPACE and loaded.action_space == ACT_SPACE
    assert_same_batch(buf.sample(32), loaded.sample(32))
    more = make_episodes([4])
    for t in more:  # ring state (cursor, open episode) survives too
        buf.insert(t)
        loaded.insert(t)
    assert_same_batch(buf.sample(32), loaded.sample(32))
    assert_same_batch(ReplayBuffer.load(path, seed=9).sample(8), ReplayBuffer.load(path, seed=9).sample(8))


def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "buffer.npz"
    buf = filled(32, make_episodes([4]), seed=0)
    buf.save(path)
    before = path.read_bytes()
    for t in make_episodes([5, 5]):
        buf.insert(t)
    calls = []
    real_write = replay_io._write_array

    def crash_on_third(fid, array):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        real_write(fid, array)

    monkeypatch.setattr(replay_io, "_write_array", crash_on_third)
    with pytest.raises(OSError, match="disk full"):
        buf.save(path)
    assert len(calls) == 3  # it crashed part-way through, after writing some arrays
    assert os.listdir(tmp_path) == ["buffer.npz"]  # no temp file left behind
    assert path.read_bytes() == before
    assert len(ReplayBuffer.load(path)) == 4


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(
        ValueError, match=re.escape("is not a serl-torch replay buffer file: no 'meta.json' entry")
    ):
        ReplayBuffer.load(path)

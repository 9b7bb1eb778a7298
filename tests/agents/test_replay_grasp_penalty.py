"""The replay buffer's optional `grasp_penalty` field: required when the layout has it, sampled, mixed, saved
and loaded; buffers and files without it behave exactly as before."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gymnasium import spaces

from serl_agents.replay import MixedSampler, ReplayBuffer
from serl_agents.replay import io as replay_io

OBS_SPACE = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT_SPACE = spaces.Box(-1, 1, (4,), np.float32)
KEYS = ["observations", "actions", "rewards", "masks", "dones", "next_observations"]


def episode(n: int, penalties: bool, start: int = 0) -> list[dict]:
    """n transitions; action[0] encodes the transition id, the penalty of transition i is -0.01 * i."""
    out = []
    for t in range(n):
        i = start + t
        transition = {
            "observations": np.full(3, i, np.float32),
            "actions": np.array([i / 1000, 0.0, 0.0, 1.0], np.float32),
            "rewards": float(i),
            "masks": 1.0,
            "dones": t == n - 1,
            "next_observations": np.full(3, i + 1, np.float32),
        }
        if penalties:
            transition["grasp_penalty"] = -0.01 * i
        out.append(transition)
    return out


def ids(batch: dict) -> np.ndarray:
    return np.rint(batch["actions"][:, 0].numpy() * 1000).astype(int)


def test_penalties_are_stored_and_sampled_with_their_transitions():
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, 64, seed=0, grasp_penalty=True)
    assert buf.layout.grasp_penalty and list(buf.layout.keys) == [*KEYS, "grasp_penalty"]
    buf.extend(episode(5, True))
    batch = buf.sample(40)
    assert batch["grasp_penalty"].dtype == torch.float32 and batch["grasp_penalty"].shape == (40,)
    np.testing.assert_allclose(batch["grasp_penalty"].numpy(), -0.01 * ids(batch), rtol=1e-6)
    # insert_batch stores them too
    rows = episode(3, True, start=10)
    buf.insert_batch({k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]})
    batch = buf.sample(200)
    assert set(ids(batch)) == {0, 1, 2, 3, 4, 10, 11, 12}
    np.testing.assert_allclose(batch["grasp_penalty"].numpy(), -0.01 * ids(batch), rtol=1e-6)


def test_without_the_field_the_layout_and_batches_are_unchanged():
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=0)
    assert not buf.layout.grasp_penalty and list(buf.layout.keys) == KEYS
    buf.extend(episode(3, False))
    assert set(buf.sample(4)) == set(KEYS)
    with pytest.raises(
        ValueError, match=re.escape(f"transition has unknown key 'grasp_penalty'; expected keys {KEYS}")
    ):
        buf.insert(episode(1, True)[0])
    assert len(buf) == 3


def test_missing_or_bad_penalties_are_rejected_before_anything_is_written():
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=0, grasp_penalty=True)
    buf.extend(episode(2, True))
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"transition is missing key 'grasp_penalty'; expected keys {[*KEYS, 'grasp_penalty']}"
        ),
    ):
        buf.insert(episode(1, False)[0])
    bad = episode(1, True)[0]
    bad["grasp_penalty"] = float("nan")
    with pytest.raises(ValueError, match="grasp_penalty contains NaN or inf"):
        buf.insert(bad)
    bad["grasp_penalty"] = [0.0, -0.02]
    with pytest.raises(ValueError, match=re.escape("grasp_penalty has shape (2,), expected ()")):
        buf.insert(bad)
    assert len(buf) == 2


def test_save_load_keeps_penalties_and_old_files_load_without_them(tmp_path):
    buf = ReplayBuffer(OBS_SPACE, ACT_SPACE, 8, seed=3, grasp_penalty=True)
    buf.extend(episode(6, True) + episode(4, True, start=20))  # wraps around
    buf.save(tmp_path / "grasp.npz")
    loaded = ReplayBuffer.load(tmp_path / "grasp.npz")
    assert loaded.layout.grasp_penalty and len(loaded) == len(buf)
    a, b = buf.sample(32), loaded.sample(32)
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # A file written before the field existed: no "grasp_penalty" metadata, no data.grasp_penalty array.
    plain = ReplayBuffer(OBS_SPACE, ACT_SPACE, 8, seed=3)
    plain.extend(episode(5, False))
    plain.save(tmp_path / "plain.npz")
    arrays, meta = replay_io.read_npz(tmp_path / "plain.npz")
    assert "data.grasp_penalty" not in arrays and meta.pop("grasp_penalty") is False
    meta.pop("format")
    replay_io.write_npz_atomic(tmp_path / "old.npz", arrays, meta)
    old = ReplayBuffer.load(tmp_path / "old.npz")
    assert not old.layout.grasp_penalty and len(old) == 5
    a, b = plain.sample(16), old.sample(16)  # the saved sampling stream continues
    assert set(b) == set(KEYS)
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # A file that claims penalties but lost the array is rejected by name.
    arrays, meta = replay_io.read_npz(tmp_path / "grasp.npz")
    del arrays["data.grasp_penalty"]
    meta.pop("format")
    replay_io.write_npz_atomic(tmp_path / "broken.npz", arrays, meta)
    with pytest.raises(ValueError, match="array 'data.grasp_penalty' is missing"):
        ReplayBuffer.load(tmp_path / "broken.npz")


def test_mixed_sampler_needs_buffers_with_the_same_keys():
    with_penalty = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=0, grasp_penalty=True)
    with_penalty.extend(episode(4, True))
    without = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=1)
    without.extend(episode(4, False))
    with pytest.raises(
        ValueError, match=re.escape(f"buffer 1 stores {KEYS}, expected {[*KEYS, 'grasp_penalty']}")
    ):
        MixedSampler([with_penalty, without])
    other = ReplayBuffer(OBS_SPACE, ACT_SPACE, 16, seed=1, grasp_penalty=True)
    other.extend(episode(4, True, start=100))
    batch = MixedSampler([with_penalty, other]).sample(10)
    np.testing.assert_allclose(batch["grasp_penalty"].numpy(), -0.01 * ids(batch), rtol=1e-6)
    assert (ids(batch)[:5] < 100).all() and (ids(batch)[5:] >= 100).all()

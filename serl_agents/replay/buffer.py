"""Replay buffer that stores every observation frame once (SERL's MemoryEfficientReplayBuffer idea).

Layout: a ring of ``capacity`` observation *slots*. A transition stored at slot ``i`` reads its
observation from slot ``i`` and its next observation from slot ``i + 1`` (mod capacity); actions,
rewards, masks and dones live in per-slot arrays at ``i``. Consecutive transitions of an episode share
the frame between them, so an episode of T transitions takes T + 1 slots: at an episode end
(``dones=True``) the terminal next observation stays in its own slot, which is marked "not a valid
start" and is never sampled as a transition; the next episode starts in the slot after it.

A new transition continues the previous one only when the previous one was not done *and* its
observation equals the stored next observation; otherwise it starts a new segment, so a caller who
forgets ``dones`` at a time limit loses nothing. Writing a frame into a slot invalidates every
transition that read that slot, which is what keeps ring wrap-around correct: a transition whose
next frame was overwritten can never be sampled. ``capacity`` counts frame slots, so a full buffer
holds about ``capacity * T / (T + 1)`` transitions of T-step episodes.

Not thread-safe: guard ``insert`` and ``sample`` with one lock if an actor and a learner share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from serl_agents.replay import io
from serl_agents.replay.fields import TransitionLayout
from serl_agents.replay.gather import gather


class ReplayBuffer:
    """Uniform-sampling ring buffer of transitions with images kept uint8 and stored once.

    Args:
        observation_space: a ``Box`` (flat state) or a flat ``Dict`` of ``Box`` entries; uint8 (H, W, 3)
            entries are camera images, the rest vectors.
        action_space: a ``Box``.
        capacity: number of observation slots (frames) kept; oldest are overwritten first.
        device: where ``sample`` puts its tensors (gathered into pinned memory when CUDA).
        seed: seeds this buffer's own ``numpy.random.Generator``; the global RNG is never used.
        grasp_penalty: store each transition's ``grasp_penalty`` (HIL-SERL's learned gripper); it is then a
            required transition key and a sampled batch key. Files saved without it load as before.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        capacity: int,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        grasp_penalty: bool = False,
    ) -> None:
        if int(capacity) != capacity or capacity < 2:
            raise ValueError(f"capacity must be an integer >= 2 (observation slots), got {capacity!r}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.layout = TransitionLayout(observation_space, action_space, grasp_penalty)
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self._rng = np.random.default_rng(seed)
        self._obs = {k: np.zeros((self.capacity, *f.shape), f.dtype) for k, f in self.layout.obs.items()}
        fields = {"actions": self.layout.action, **self.layout.scalars}
        self._data = {k: np.zeros((self.capacity, *f.shape), f.dtype) for k, f in fields.items()}
        self._valid = np.zeros(self.capacity, dtype=bool)  # slot starts a sampleable transition
        self._cursor = -1  # slot holding the newest frame; -1 while empty
        self._open = False  # newest transition did not end its episode, so the next may continue it
        self._filled = 0  # slots [0, filled) have been written at least once
        self._size = 0  # number of valid slots = sampleable transitions

    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays (what a full buffer costs in RAM)."""
        arrays = [*self._obs.values(), *self._data.values(), self._valid]
        return sum(a.nbytes for a in arrays)

    # ---------------------------------------------------------------- insertion
    def insert(self, transition: Mapping[str, Any]) -> None:
        """Add one transition: observations, actions, rewards, masks (1 - terminated), dones
        (terminated or truncated), next_observations. Arrays and torch tensors are accepted and copied."""
        self._write(self.layout.check(transition))

    def extend(self, transitions: Iterable[Mapping[str, Any]]) -> None:
        """Add many transition dicts (e.g. a SERL demo list); all are validated before any is written."""
        checked = [self.layout.check(t) for t in transitions]
        for t in checked:
            self._write(t)

    def insert_batch(self, batch: Mapping[str, Any]) -> None:
        """Add N transitions given as arrays with a leading axis N; validated as a whole before writing."""
        t = self.layout.check(batch, batch=True)
        for i in range(len(t["rewards"])):
            self._write(
                {
                    "observations": {k: v[i] for k, v in t["observations"].items()},
                    "next_observations": {k: v[i] for k, v in t["next_observations"].items()},
                    **{k: t[k][i] for k in self._data},
                }
            )

    def _continues(self, obs: Mapping[str, np.ndarray]) -> bool:
        return self._open and all(np.array_equal(self._obs[k][self._cursor], v) for k, v in obs.items())

    def _invalidate(self, slot: int) -> None:
        if self._valid[slot]:
            self._valid[slot] = False
            self._size -= 1

    def _put_frame(self, slot: int, frame: Mapping[str, np.ndarray]) -> None:
        """Write a frame; the transitions starting at ``slot`` and ending at it lose their data."""
        self._invalidate(slot)
        self._invalidate((slot - 1) % self.capacity)
        for k, v in frame.items():
            self._obs[k][slot] = v
        self._filled = max(self._filled, slot + 1)

    def _write(self, t: Mapping[str, Any]) -> None:
        if self._continues(t["observations"]):
            start = self._cursor
        else:
            start = (self._cursor + 1) % self.capacity
            self._put_frame(start, t["observations"])
        end = (start + 1) % self.capacity
        self._put_frame(end, t["next_observations"])
        for k, arr in self._data.items():
            arr[start] = t[k]
        self._valid[start] = True
        self._size += 1
        self._cursor = end
        self._open = not bool(t["dones"])

    # ---------------------------------------------------------------- sampling
    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Uniform slot indices of valid transitions (rejection sampling over written slots)."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; insert transitions first")
        picked = np.empty(0, dtype=np.int64)
        while picked.size < batch_size:
            candidates = self._rng.integers(0, self._filled, size=int(batch_size), dtype=np.int64)
            picked = np.concatenate([picked, candidates[self._valid[candidates]]])
        return picked[: int(batch_size)]

    def sample(self, batch_size: int) -> dict[str, Any]:
        """A batch of torch tensors on ``device``: observations, actions, rewards, masks, dones,
        next_observations (and grasp_penalty when stored). Dict observations stay dicts and images stay
        uint8 (B, H, W, 3)."""
        return gather([(self, self.sample_indices(batch_size))], self.device)

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the buffer (contents, ring state, sampler RNG) to one .npz file, atomically, without pickle."""
        space_meta, arrays = io.encode_spaces(
            {"observation_space": self.observation_space, "action_space": self.action_space}
        )
        n = self._filled
        obs_names = {k: f"obs{i}" for i, k in enumerate(self._obs)}
        arrays.update({name: self._obs[k][:n] for k, name in obs_names.items()})
        arrays.update({f"data.{k}": a[:n] for k, a in self._data.items()})
        arrays["valid"] = self._valid[:n]
        meta = {
            "capacity": self.capacity,
            "cursor": self._cursor,
            "open": self._open,
            "filled": n,
            "size": self._size,
            "rng_state": self._rng.bit_generator.state,
            "obs_arrays": obs_names,
            "spaces": space_meta,
            "grasp_penalty": self.layout.grasp_penalty,
        }
        io.write_npz_atomic(path, arrays, meta)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", seed: int | None = None
    ) -> ReplayBuffer:
        """Read a file written by ``save``. ``seed=None`` continues the saved sampling stream exactly;
        an integer starts a fresh one. The layout is the saved one (files from before ``grasp_penalty``
        existed load without it)."""
        arrays, meta = io.read_npz(path)
        decoded = io.decode_spaces(meta["spaces"], arrays)
        buf = cls(
            decoded["observation_space"],
            decoded["action_space"],
            meta["capacity"],
            device=device,
            seed=seed,
            grasp_penalty=bool(meta.get("grasp_penalty", False)),
        )
        if set(meta["obs_arrays"]) != set(buf._obs):
            raise ValueError(
                f"{path}: observation arrays {sorted(meta['obs_arrays'])} do not match the "
                f"observation space keys {sorted(buf._obs)}"
            )
        n = meta["filled"]
        targets = {name: buf._obs[k] for k, name in meta["obs_arrays"].items()}
        targets.update({f"data.{k}": a for k, a in buf._data.items()})
        targets["valid"] = buf._valid
        for name, target in targets.items():
            if name not in arrays:
                raise ValueError(f"{path}: array {name!r} is missing")
            src = arrays[name]
            if src.shape != (n, *target.shape[1:]) or src.dtype != target.dtype:
                raise ValueError(
                    f"{path}: array {name!r} has shape {src.shape} and dtype {src.dtype}, "
                    f"expected {(n, *target.shape[1:])} and {target.dtype}"
                )
            target[:n] = src
        buf._cursor, buf._open, buf._filled = meta["cursor"], meta["open"], n
        buf._size = int(buf._valid.sum())
        if buf._size != meta["size"]:
            raise ValueError(f"{path}: {buf._size} valid transitions stored, expected {meta['size']}")
        if seed is None:
            buf._rng.bit_generator.state = meta["rng_state"]
        return buf

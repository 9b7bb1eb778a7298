"""Demo datasets in Minari's format (HDF5), written episode by episode so an interrupted recording keeps its work.

Layout of a dataset at `path` (`path/data/` is what `minari.MinariDataset` opens; with `MINARI_DATASETS_PATH`
set to the parent of `path`, `minari.load_dataset(path.name)` too, for a name ending in `-vN`):

    path/data/metadata.json          Minari metadata (spaces, env spec, episode and step counts)
    path/data/main_data.hdf5         one HDF5 external link `episode_i` per episode
    path/data/episode_000000.hdf5    the episode's group, exactly as Minari lays it out

Why not Minari's `DataCollector` or `update_episodes`: the collector needs jax (the `[create]` extra, ~350 MB),
and both rewrite a single HDF5 file in place, which a kill during the write can leave unreadable. Here each
completed episode goes to its own file, then the small link file and the metadata are replaced atomically
(write, fsync, rename), so whenever the recorder dies every completed episode stays loadable, and the dataset
never counts an episode whose data is not on disk. Minari's own reader loads it unchanged (h5py follows the
links). Images are stored as raw uint8 with lossless gzip compression (about 8x smaller on the sim's cameras),
never JPEG (Minari's default, lossy: a noise image came back off by up to 239): a demo must show the policy
exactly what the env showed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

DATA_DIR = "data"
METADATA = "metadata.json"
MAIN_FILE = "main_data.hdf5"


def _require_minari():
    try:
        import h5py
        import minari
    except ImportError as err:
        raise ImportError(
            f'demo datasets need minari and h5py: pip install "minari>=0.5.4" h5py pillow ({err})'
        ) from err
    return minari, h5py


@dataclass
class Episode:
    """One recorded episode: T actions and rewards, T + 1 observations (the reset observation first)."""

    observations: list[Any] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminations: list[bool] = field(default_factory=list)
    truncations: list[bool] = field(default_factory=list)
    infos: dict[str, list] = field(default_factory=dict)  # per-step scalars, T + 1 entries each
    seed: int | None = None
    success: bool = False

    def __len__(self) -> int:
        return len(self.rewards)


def dataset_id_for(path: Path) -> str:
    """Minari ids must end in `-vN`: the folder name if it does, else the folder name + `-v0`."""
    name = re.sub(r"[^-_\w]", "_", Path(path).resolve().name)
    return name if re.search(r"-v\d+$", name) else f"{name}-v0"


def _stack(values: list[Any], space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Dict):
        return {k: _stack([v[k] for v in values], s) for k, s in space.spaces.items()}
    return np.stack([np.asarray(v, dtype=space.dtype) for v in values])


def _is_image(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _write_space(group, name: str, data: Any, space: gym.Space) -> None:
    if isinstance(space, gym.spaces.Dict):
        sub = group.create_group(name)
        for key, subspace in space.spaces.items():
            _write_space(sub, key, data[key], subspace)
    elif _is_image(space):  # lossless, one chunk per frame
        group.create_dataset(
            name, data=data, chunks=(1, *data.shape[1:]), compression="gzip", compression_opts=4
        )
    else:
        group.create_dataset(name, data=data)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_atomically(tmp: Path, final: Path) -> None:
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent)


class DemoWriter:
    """Creates or re-opens (appends to) a demo dataset and adds completed episodes one at a time.

    Args:
        path: dataset folder (created if missing; an existing one must have the same spaces).
        observation_space, action_space: the env's spaces.
        env_spec: the env's spec, saved so `MinariDataset.recover_environment()` works.
        metadata: extra dataset-level keys (e.g. the device used).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        observation_space: gym.Space,
        action_space: gym.Space,
        env_spec: gym.envs.registration.EnvSpec | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        minari, self._h5py = _require_minari()
        from minari.dataset.minari_storage import MinariStorage
        from minari.serialization import serialize_space

        self.data_path = Path(path) / DATA_DIR
        self.observation_space, self.action_space = observation_space, action_space
        if (self.data_path / METADATA).exists():
            saved = json.loads((self.data_path / METADATA).read_text())
            for key, space in (("observation_space", observation_space), ("action_space", action_space)):
                if saved.get(key) != serialize_space(space):
                    raise ValueError(
                        f"{self.data_path} holds a dataset with another {key} ({saved.get(key)}); "
                        f"expected {serialize_space(space)}: record into a new --out folder"
                    )
            self._repair(self._identity(minari.__version__, metadata))
        else:
            self.data_path.parent.mkdir(parents=True, exist_ok=True)
            MinariStorage.new(
                self.data_path,
                observation_space,
                action_space,
                env_spec=env_spec,
                data_format="hdf5",
                jpeg_encoding=False,
            )
            self._write_links(0)
            self.update_metadata(
                {**self._identity(minari.__version__, metadata), "total_episodes": 0, "total_steps": 0}
            )

    def _identity(self, minari_version: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """The dataset-level keys Minari's loader needs, plus the caller's."""
        return {
            "dataset_id": dataset_id_for(self.data_path.parent),
            "minari_version": minari_version,
            **(metadata or {}),
        }

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.data_path / METADATA).read_text())

    @property
    def num_episodes(self) -> int:
        return int(self.metadata["total_episodes"])

    def update_metadata(self, values: Mapping[str, Any]) -> None:
        """Merge `values` into metadata.json, atomically."""
        merged = {**self.metadata, **values} if (self.data_path / METADATA).exists() else dict(values)
        tmp = self.data_path / (METADATA + ".tmp")
        tmp.write_text(json.dumps(merged))
        _replace_atomically(tmp, self.data_path / METADATA)

    def _episode_file(self, index: int) -> Path:
        return self.data_path / f"episode_{index:06d}.hdf5"

    def _write_links(self, count: int) -> None:
        tmp = self.data_path / (MAIN_FILE + ".tmp")
        with self._h5py.File(tmp, "w", track_order=True) as f:
            for i in range(count):
                f[f"episode_{i}"] = self._h5py.ExternalLink(self._episode_file(i).name, f"/episode_{i}")
        _replace_atomically(tmp, self.data_path / MAIN_FILE)

    def _repair(self, identity: Mapping[str, Any]) -> None:
        """After a crash: count the episodes whose files are complete and make the metadata agree (a crash
        while the dataset was being created leaves an empty link file and no identity keys)."""
        count, main = 0, self.data_path / MAIN_FILE
        if self._h5py.is_hdf5(main):
            with self._h5py.File(main, "r") as f:
                while f"episode_{count}" in f.keys() and self._episode_file(count).exists():
                    count += 1
        steps = 0
        for i in range(count):
            with self._h5py.File(self._episode_file(i), "r") as f:
                steps += int(f[f"episode_{i}"].attrs["total_steps"])
        self._write_links(count)
        missing = {k: v for k, v in identity.items() if k not in self.metadata}
        self.update_metadata({**missing, "total_episodes": count, "total_steps": steps})

    def append(self, episode: Episode, metadata: Mapping[str, Any] | None = None) -> int:
        """Write a completed episode (and merge `metadata` into the dataset's in the same atomic update); returns
        its index. On return the episode is on disk and counted."""
        if len(episode) == 0 or len(episode.observations) != len(episode) + 1:
            raise ValueError(
                f"an episode needs T >= 1 steps and T + 1 observations, got {len(episode)} steps and "
                f"{len(episode.observations)} observations"
            )
        index, steps = self.num_episodes, len(episode)
        final = self._episode_file(index)
        tmp = final.with_suffix(".hdf5.tmp")
        with self._h5py.File(tmp, "w") as f:
            group = f.create_group(f"episode_{index}")
            group.attrs.update({"id": index, "total_steps": steps, "success": bool(episode.success)})
            if episode.seed is not None:
                group.attrs["seed"] = int(episode.seed)
            _write_space(
                group,
                "observations",
                _stack(episode.observations, self.observation_space),
                self.observation_space,
            )
            _write_space(group, "actions", _stack(episode.actions, self.action_space), self.action_space)
            group.create_dataset("rewards", data=np.asarray(episode.rewards, dtype=np.float64))
            group.create_dataset("terminations", data=np.asarray(episode.terminations, dtype=bool))
            group.create_dataset("truncations", data=np.asarray(episode.truncations, dtype=bool))
            infos = group.create_group("infos")
            for key, values in episode.infos.items():
                infos.create_dataset(key, data=np.asarray(values))
        _replace_atomically(tmp, final)
        self._write_links(index + 1)
        totals = {"total_episodes": index + 1, "total_steps": int(self.metadata["total_steps"]) + steps}
        self.update_metadata({**(metadata or {}), **totals})
        return index


def _data_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    for candidate in (path / DATA_DIR, path):
        if (candidate / METADATA).exists():
            return candidate
    raise FileNotFoundError(
        f"no demo dataset at {path}: expected {path / DATA_DIR / METADATA} (written by record-demos)"
    )


def open_demos(path: str | os.PathLike):
    """The dataset at `path` (the folder given to record-demos, or its `data/`) as a `minari.MinariDataset`."""
    minari, _ = _require_minari()
    return minari.MinariDataset(_data_path(path))


def load_demos(path: str | os.PathLike, successes_only: bool = True) -> list[dict[str, Any]]:
    """Transitions of a demo dataset, as `ReplayBuffer.insert` takes them: observations, actions, rewards, masks
    (1 - terminated), dones (the episode ended: terminated, truncated or stopped by the person), next_observations.

    Consecutive transitions share their observation arrays (views into each episode), so images are held once.
    """
    dataset = open_demos(path)
    indices = list(dataset.episode_indices)
    labels = [bool(m.get("success", True)) for m in dataset.storage.get_episode_metadata(indices)]
    transitions: list[dict[str, Any]] = []
    for episode, success in zip(dataset.iterate_episodes(indices), labels, strict=True):
        if successes_only and not success:
            continue
        obs, steps = episode.observations, len(episode)

        def at(t: int, obs=obs):
            return {k: v[t] for k, v in obs.items()} if isinstance(obs, dict) else obs[t]

        for t in range(steps):
            terminated = bool(episode.terminations[t])
            transitions.append(
                {
                    "observations": at(t),
                    "actions": episode.actions[t],
                    "rewards": np.float32(episode.rewards[t]),
                    "masks": np.float32(not terminated),
                    "dones": terminated or bool(episode.truncations[t]) or t == steps - 1,
                    "next_observations": at(t + 1),
                }
            )
    return transitions

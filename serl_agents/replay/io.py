"""Atomic, pickle-free .npz files for replay buffers: arrays plus one JSON metadata entry.

The file is written to a temporary file in the target directory, fsynced, then moved over the
target with ``os.replace``; a crash part-way leaves the previous file intact and no temporary behind.
Gymnasium spaces are stored as JSON (type, dtype) plus their ``low``/``high`` arrays.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import IO, Any

import numpy as np
from gymnasium import spaces

FORMAT = "serl-torch/replay-buffer/v1"
META = "meta.json"


def _write_array(fid: IO[bytes], array: np.ndarray) -> None:
    """Write one array in .npy format (the seam tests use to simulate a crash mid-write)."""
    np.lib.format.write_array(fid, np.ascontiguousarray(array), allow_pickle=False)


def write_npz_atomic(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write ``arrays`` and ``meta`` (JSON) as an uncompressed .npz at ``path``, all or nothing."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    header = np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, array in {META: header, **arrays}.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as fid:
                        _write_array(fid, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def read_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a file written by ``write_npz_atomic`` (never unpickles)."""
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a serl-torch replay buffer file: expected an .npz archive")
    with loaded:
        if META not in loaded.files:
            raise ValueError(f"{path} is not a serl-torch replay buffer file: no {META!r} entry")
        meta = json.loads(loaded[META].tobytes().decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
        arrays = {k: loaded[k] for k in loaded.files if k != META}
    return arrays, meta


def encode_spaces(named: dict[str, spaces.Space]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """JSON description of Box / Dict-of-Box spaces, and the low/high arrays it refers to."""
    arrays: dict[str, np.ndarray] = {}

    def encode(space: spaces.Space, where: str) -> dict[str, Any]:
        if isinstance(space, spaces.Dict):
            items = enumerate(space.spaces.items())
            return {"type": "Dict", "spaces": {k: encode(s, f"{where}.{i}") for i, (k, s) in items}}
        if isinstance(space, spaces.Box):
            arrays[f"{where}.low"], arrays[f"{where}.high"] = space.low, space.high
            return {
                "type": "Box",
                "dtype": np.dtype(space.dtype).name,
                "low": f"{where}.low",
                "high": f"{where}.high",
            }
        raise ValueError(f"{where} is {type(space).__name__}, expected a gymnasium Box or Dict space")

    return {name: encode(s, f"space.{name}") for name, s in named.items()}, arrays


def decode_spaces(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, spaces.Space]:
    """Inverse of ``encode_spaces``."""

    def decode(d: dict[str, Any]) -> spaces.Space:
        if d["type"] == "Dict":
            return spaces.Dict({k: decode(v) for k, v in d["spaces"].items()})
        return spaces.Box(low=arrays[d["low"]], high=arrays[d["high"]], dtype=np.dtype(d["dtype"]))

    return {name: decode(d) for name, d in meta.items()}

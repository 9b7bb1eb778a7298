"""Index arrays -> one batch of torch tensors, gathered straight from the ring storage.

Shared by ``ReplayBuffer.sample`` and ``MixedSampler.sample`` so a mixed batch is gathered into one
output per key (no concatenation copy). Rows are copied with single-threaded ``np.take`` into the
output tensor's memory: torch's multi-threaded ``index_select`` stalls badly when other processes
hold the cores. For a CUDA device the output is pinned host memory and the copy to the device is
asynchronous; PyTorch's caching host allocator keeps a pinned block alive until its copy has
finished, so consecutive batches never race.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from serl_agents.replay.buffer import ReplayBuffer


def _take(sources: Sequence[np.ndarray], indices: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    rows = sum(len(i) for i in indices)
    dtype = torch.from_numpy(sources[0][:0]).dtype
    out = torch.empty((rows, *sources[0].shape[1:]), dtype=dtype, pin_memory=device.type == "cuda")
    dst, at = out.numpy(), 0
    for src, index in zip(sources, indices, strict=True):
        # mode="clip" writes straight into ``dst`` (mode="raise" buffers); indices are in range.
        np.take(src, index, axis=0, out=dst[at : at + len(index)], mode="clip")
        at += len(index)
    return out.to(device, non_blocking=True)


def gather(parts: Sequence[tuple[ReplayBuffer, np.ndarray]], device: torch.device) -> dict[str, Any]:
    """Batch made of the transitions at ``indices`` of each ``(buffer, indices)`` part, in order.
    All buffers must share one layout (checked by the callers)."""
    first = parts[0][0]
    starts = [idx for _, idx in parts]
    nexts = [(idx + 1) % buf.capacity for buf, idx in parts]

    def observations(indices: list[np.ndarray]) -> Any:
        obs = {k: _take([b._obs[k] for b, _ in parts], indices, device) for k in first._obs}
        return obs if first.layout.obs_is_dict else obs[""]

    batch = {"observations": observations(starts)}
    batch.update({k: _take([b._data[k] for b, _ in parts], starts, device) for k in first._data})
    batch["next_observations"] = observations(nexts)
    return batch

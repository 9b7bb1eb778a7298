"""Batches drawn from several buffers in fixed proportions (RLPD / SERL 50/50 demo + online)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from serl_agents.replay.buffer import ReplayBuffer
from serl_agents.replay.gather import gather


def split_counts(batch_size: int, fractions: Sequence[float]) -> list[int]:
    """Rows per buffer: floor of each share, the remainder going to the largest fractional parts
    (ties to the earlier buffer), so the counts always sum to ``batch_size``."""
    shares = [batch_size * f for f in fractions]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in by_remainder[: batch_size - sum(counts)]:
        counts[i] += 1
    return counts


class MixedSampler:
    """Samples ``round(fraction * batch_size)`` rows from each buffer and returns one batch, rows of
    ``buffers[0]`` first. Each buffer draws with its own seeded generator.

    Args:
        buffers: replay buffers with identical observation and action spaces, device and stored keys.
        fractions: share of each batch from each buffer; non-negative, summing to 1.
    """

    def __init__(self, buffers: Sequence[ReplayBuffer], fractions: Sequence[float] = (0.5, 0.5)) -> None:
        if len(buffers) == 0:
            raise ValueError("MixedSampler needs at least one buffer")
        if len(fractions) != len(buffers):
            raise ValueError(
                f"got {len(fractions)} fractions for {len(buffers)} buffers; expected one per buffer"
            )
        if any(not np.isfinite(f) or f < 0 for f in fractions):
            raise ValueError(f"fractions must be finite and >= 0, got {list(fractions)}")
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise ValueError(f"fractions must sum to 1, got {sum(fractions):g} from {list(fractions)}")
        first = buffers[0]
        for i, b in enumerate(buffers[1:], start=1):
            for attr in ("observation_space", "action_space", "device"):
                if getattr(b, attr) != getattr(first, attr):
                    raise ValueError(
                        f"buffer {i} has {attr} {getattr(b, attr)}, expected {getattr(first, attr)} "
                        "as buffer 0"
                    )
            if b.layout.keys != first.layout.keys:
                raise ValueError(
                    f"buffer {i} stores {list(b.layout.keys)}, expected {list(first.layout.keys)} as buffer 0"
                )
        self.buffers = list(buffers)
        self.fractions = [float(f) for f in fractions]

    def sample(self, batch_size: int, chunks: int = 1) -> dict[str, Any]:
        """One batch with the configured split; same keys, dtypes and device as ``ReplayBuffer.sample``.

        With ``chunks`` > 1 the rows form ``chunks`` consecutive blocks of ``batch_size / chunks``, each with the
        split (``buffers[0]`` first within a block): a batch later cut into ``chunks`` minibatches, as SERL's
        high-UTD update cuts it, then keeps the demo/online mixture in every minibatch, as SERL samples a fresh
        50/50 batch for each critic step. The rows drawn are the same as with ``chunks=1``, only ordered."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(chunks) != chunks or chunks < 1 or batch_size % chunks:
            raise ValueError(f"chunks must be a positive divisor of batch_size {batch_size}, got {chunks!r}")
        chunks = int(chunks)
        per_chunk = split_counts(int(batch_size) // chunks, self.fractions)
        for i, (b, n) in enumerate(zip(self.buffers, per_chunk, strict=True)):
            if n > 0 and len(b) == 0:
                raise ValueError(
                    f"buffer {i} is empty; it must hold transitions to supply {n * chunks} of {batch_size} rows"
                )
        drawn = [(b, b.sample_indices(n * chunks), n) for b, n in zip(self.buffers, per_chunk, strict=True) if n > 0]
        parts = [(b, indices[c * n : (c + 1) * n]) for c in range(chunks) for b, indices, n in drawn]
        return gather(parts, self.buffers[0].device)

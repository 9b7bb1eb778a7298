"""Deadline-based pacing of a control loop, with its jitter measured (no fixed sleeps after commands).

Each `wait()` sleeps until the next deadline, deadlines being exactly one period apart; a tick that comes late
does not shift the ones after it. A loop more than one period behind re-anchors (an overrun) instead of rushing
through the missed ticks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

WINDOW = 10_000  # ticks kept for the statistics


@dataclass(frozen=True)
class PacingStats:
    """Jitter of the period between consecutive ticks (|actual - nominal|) and lateness against the deadline, ms."""

    ticks: int
    overruns: int
    period_jitter_p50_ms: float
    period_jitter_p99_ms: float
    period_jitter_max_ms: float
    lateness_p99_ms: float


class DeadlinePacer:
    def __init__(self, period: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0 s, got {period}")
        self.period = period
        self._deadline: float | None = None
        self._last_tick = 0.0
        self._jitter: deque[float] = deque(maxlen=WINDOW)
        self._lateness: deque[float] = deque(maxlen=WINDOW)
        self.ticks = self.overruns = 0
        self.last_wait = 0.0  # s slept in the last wait()

    def start(self) -> None:
        """Anchor the schedule now (after a reset); the first tick is one period later."""
        now = time.perf_counter()
        self._deadline, self._last_tick = now + self.period, now

    def wait(self) -> None:
        if self._deadline is None:
            self.start()
        before = time.perf_counter()
        if self._deadline > before:
            time.sleep(self._deadline - before)
        now = time.perf_counter()
        self.last_wait = now - before
        self._lateness.append(now - self._deadline)
        self._jitter.append(abs(now - self._last_tick - self.period))
        self._last_tick, self.ticks = now, self.ticks + 1
        self._deadline += self.period
        if now > self._deadline:  # a whole period behind: start over rather than rush
            self._deadline, self.overruns = now + self.period, self.overruns + 1

    def stats(self) -> PacingStats:
        jitter = np.array(self._jitter) * 1000.0 if self._jitter else np.zeros(1)
        late = np.array(self._lateness) * 1000.0 if self._lateness else np.zeros(1)
        return PacingStats(
            ticks=self.ticks,
            overruns=self.overruns,
            period_jitter_p50_ms=float(np.percentile(jitter, 50)),
            period_jitter_p99_ms=float(np.percentile(jitter, 99)),
            period_jitter_max_ms=float(jitter.max()),
            lateness_p99_ms=float(np.percentile(late, 99)),
        )

    def clear(self) -> None:
        self._jitter.clear()
        self._lateness.clear()
        self.ticks = self.overruns = 0

"""Ctrl-C and SIGTERM end a training run between steps, not in the middle of one.

A run killed mid-step can leave its loop state one transition off its buffers; a run stopped between steps can
write a consistent checkpoint and be resumed exactly. Both `serl train` loops (synchronous and `--async`) install
`StopSignals` around their loop and poll `target.stop_reason`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

REASONS = {signal.SIGINT: "interrupt", signal.SIGTERM: "pause"}


class StopSignals:
    """While entered, Ctrl-C (SIGINT) sets `target.stop_reason = "interrupt"` and SIGTERM `"pause"`, and prints
    `describe(reason)`; a second Ctrl-C raises KeyboardInterrupt at once. Installed only in the main thread
    (Python's rule; elsewhere this does nothing) and the previous handlers are restored on exit."""

    def __init__(self, target: Any, describe: Callable[[str], str]) -> None:
        self.target = target
        self.describe = describe
        self.previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.target.stop_reason is not None:
            raise KeyboardInterrupt
        self.target.stop_reason = REASONS[signum]
        print(f"\n{self.describe(self.target.stop_reason)} (Ctrl-C again to kill at once)", flush=True)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in REASONS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

"""KeyboardDevice: drive the arm from a keyboard, through an X listener (pynput) or a terminal in raw mode.

Key map (robot base frame, operator standing behind the robot looking along +x):

| keys | command |
|---|---|
| `w` / `s`, `Up` / `Down` | +x / -x (forward / back) |
| `a` / `d`, `Left` / `Right` | +y / -y (left / right) |
| `e` / `q` | +z / -z (up / down) |
| `j` / `l` | +rx / -rx (roll) |
| `i` / `k` | +ry / -ry (pitch) |
| `u` / `o` | +rz / -rz (yaw) |
| `g` / `r` | close (grasp) / open (release) the gripper |
| `space` | toggle intervention: while on, the person holds control even with no key pressed (the arm holds still) |
| `y` / `n` | mark the episode a success / a failure |
| `Enter` | end the episode |

The person is in control on a step when intervention is toggled on or any motion or gripper key was down since
the previous step. Under X (pynput) a held key keeps commanding until released and a short tap counts for one
step. In a terminal there are no key-release events: each key press (and each auto-repeat) commands one step.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from typing import Literal

import numpy as np

from serl_envs.wrappers.devices.base import ActionMapping, Device, DeviceAction, Event, EventLatch

Backend = Literal["auto", "x11", "terminal"]

MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "up": (0, 1.0), "down": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0), "left": (1, 1.0), "right": (1, -1.0),
    "e": (2, 1.0), "q": (2, -1.0),
    "j": (3, 1.0), "l": (3, -1.0),
    "i": (4, 1.0), "k": (4, -1.0),
    "u": (5, 1.0), "o": (5, -1.0),
}  # fmt: skip
GRIPPER_KEYS: dict[str, float] = {"g": 1.0, "r": -1.0}
TOGGLE_KEY = "space"
EVENT_KEYS: dict[str, Event] = {"y": "success", "n": "failure", "enter": "end"}
_ARROWS = {b"A": "up", b"B": "down", b"C": "right", b"D": "left"}


class _Keys:
    """Keys down now plus keys pressed since the last `take()`, so a tap between two steps still counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._tapped: set[str] = set()

    def press(self, name: str) -> None:
        with self._lock:
            self._held.add(name)
            self._tapped.add(name)

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)

    def take(self) -> set[str]:
        with self._lock:
            keys, self._tapped = self._held | self._tapped, set()
        return keys


class KeyboardDevice(Device):
    """Keyboard teleoperation; see the module docstring for the key map.

    Args:
        backend: "x11" (pynput listener, needs an X display), "terminal" (raw-mode reads of a tty), or "auto"
            (x11 when $DISPLAY is set, else terminal).
        fd: file descriptor of the terminal for the terminal backend (default: stdin).
        mapping: gains from key presses (±1) to env actions; default half speed, which is easier to aim.
    """

    mapping = ActionMapping(translation=0.5, rotation=0.5)
    hint = (
        "w/s a/d e/q move, j/l i/k u/o rotate, g/r close/open, space toggle, y/n success/failure, Enter end"
    )

    def __init__(
        self, backend: Backend = "auto", fd: int | None = None, mapping: ActionMapping | None = None
    ) -> None:
        if backend not in ("auto", "x11", "terminal"):
            raise ValueError(f"KeyboardDevice backend must be 'auto', 'x11' or 'terminal', got {backend!r}")
        if mapping is not None:
            self.mapping = mapping
        self._keys = _Keys()
        self._latch = EventLatch()
        self._toggled = False
        self._listener = None
        self._terminal: _RawTerminal | None = None
        if backend == "auto":
            backend = "x11" if os.environ.get("DISPLAY") else "terminal"
        self.backend = backend
        if backend == "x11":
            self._listener = _start_x_listener(self._on_press, self._keys.release)
        else:
            self._terminal = _RawTerminal(sys.stdin.fileno() if fd is None else fd)

    def _on_press(self, name: str) -> None:
        if name == TOGGLE_KEY:
            self._toggled = not self._toggled
        elif name in EVENT_KEYS:
            self._latch.mark(EVENT_KEYS[name])
        else:
            self._keys.press(name)

    @property
    def toggled(self) -> bool:
        """Whether intervention is toggled on (the `space` key)."""
        return self._toggled

    def _pump_terminal(self) -> None:
        """Terminal keys arrive as presses without releases: each is a tap."""
        if self._terminal is not None:
            for name in self._terminal.read_keys():
                self._on_press(name)
                self._keys.release(name)

    def read(self) -> DeviceAction | None:
        self._pump_terminal()
        keys = self._keys.take()
        twist = np.zeros(6)
        for name in keys & MOTION_KEYS.keys():
            axis, sign = MOTION_KEYS[name]
            twist[axis] += sign
        grip = {GRIPPER_KEYS[k] for k in keys & GRIPPER_KEYS.keys()}
        gripper = grip.pop() if len(grip) == 1 else None  # both g and r down: no gripper command
        if not (self._toggled or keys & (MOTION_KEYS.keys() | GRIPPER_KEYS.keys())):
            return None
        return DeviceAction(twist, gripper)

    def events(self) -> frozenset[Event]:
        self._pump_terminal()
        return self._latch.drain()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()  # pynput's X listener thread exits at the next X key event (a daemon thread)
            self._listener = None
        if self._terminal is not None:
            self._terminal.restore()
            self._terminal = None


def _start_x_listener(on_press, on_release):
    """A running pynput listener that reports key names of the module's key map."""
    try:
        from pynput import keyboard
    except ImportError as err:  # pynput missing, or no usable X backend
        raise ImportError(
            'the keyboard X backend needs pynput and an X display: pip install "serl-torch[keyboard]" '
            f"({err}); without X use KeyboardDevice(backend='terminal')"
        ) from err
    special = {
        keyboard.Key.up: "up", keyboard.Key.down: "down", keyboard.Key.left: "left", keyboard.Key.right: "right",
        keyboard.Key.space: "space", keyboard.Key.enter: "enter",
    }  # fmt: skip

    def name_of(key) -> str | None:
        if key in special:
            return special[key]
        char = getattr(key, "char", None)
        return char.lower() if char else None

    def press(key) -> None:
        if (name := name_of(key)) is not None:
            on_press(name)

    def release(key) -> None:
        if (name := name_of(key)) is not None:
            on_release(name)

    listener = keyboard.Listener(on_press=press, on_release=release)
    listener.start()
    listener.wait()  # returns once the X connection records events
    return listener


class _RawTerminal:
    """A tty switched to non-canonical, no-echo mode (Ctrl+C still interrupts); restored by `restore()`."""

    def __init__(self, fd: int) -> None:
        import termios

        if not os.isatty(fd):
            raise RuntimeError(
                f"the keyboard terminal backend needs a terminal, but fd {fd} is not a tty; "
                "run in a terminal, or under X with KeyboardDevice(backend='x11')"
            )
        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: byte-at-a-time, no echo; ISIG kept
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 0, 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        self._pending = b""

    def read_keys(self) -> list[str]:
        """Key names typed since the last call (never blocks)."""
        data = self._pending
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 1024)
            if not chunk:
                break
            data += chunk
        names, i = [], 0
        while i < len(data):
            if (
                data[i] == 0x1B
            ):  # escape: an arrow is ESC [ A..D; other sequences and a lone Escape are ignored
                if len(data) - i < 3 and data[i + 1 : i + 2] in (b"", b"["):
                    break  # cut between two reads: finish it next time
                if data[i + 1 : i + 2] == b"[":
                    if (name := _ARROWS.get(data[i + 2 : i + 3])) is not None:
                        names.append(name)
                    i += 3
                else:
                    i += 1
                continue
            char = chr(data[i]).lower()
            names.append({" ": "space", "\r": "enter", "\n": "enter"}.get(char, char))
            i += 1
        self._pending = data[i:]
        return names

    def restore(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)

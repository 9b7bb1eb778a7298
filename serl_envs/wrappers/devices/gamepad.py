"""GamepadDevice: an SDL game controller through pygame (extra [gamepad]).

Default layout (Xbox-style pad as SDL numbers it on Linux; change it with `GamepadConfig`):

| control | command |
|---|---|
| left stick up / left | +x / +y (operator behind the robot looking along +x) |
| right stick up / left | +z / +rz (yaw) |
| RB / LB | close / open the gripper |
| Y | toggle intervention (hold control with the sticks at rest) |
| Start / Back | mark success / failure |
| B | end the episode |

The person is in control when a stick is past the dead zone, a gripper button is down, or intervention is toggled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serl_envs.wrappers.devices.base import ActionMapping, Device, DeviceAction, Event, EventLatch
from serl_envs.wrappers.devices.spacemouse import apply_deadzone

Axis = tuple[int, float] | None  # (SDL axis index, sign) or unused


@dataclass(frozen=True)
class GamepadConfig:
    """Which SDL axis drives each robot axis (x y z rx ry rz) and which buttons do what."""

    axes: tuple[Axis, Axis, Axis, Axis, Axis, Axis] = ((1, -1.0), (0, -1.0), (4, -1.0), None, None, (3, -1.0))
    close_button: int = 5
    open_button: int = 4
    toggle_button: int = 3
    success_button: int = 7
    failure_button: int = 6
    end_button: int = 1


class Joystick(Protocol):
    """The part of `pygame.joystick.Joystick` we use."""

    def get_numaxes(self) -> int: ...

    def get_numbuttons(self) -> int: ...

    def get_axis(self, index: int) -> float: ...

    def get_button(self, index: int) -> int: ...


class GamepadDevice(Device):
    """A gamepad as an intervention device.

    Args:
        index: which SDL joystick to open.
        config: axis and button layout.
        deadzone: per-axis dead zone (sticks rest a little off centre).
        mapping: gains to env actions.
        joystick: an already open joystick object; None opens `index` through pygame.
    """

    hint = "sticks move, RB/LB close/open, Y toggle, Start/Back success/failure, B end"

    def __init__(
        self,
        index: int = 0,
        config: GamepadConfig | None = None,
        deadzone: float = 0.15,
        mapping: ActionMapping | None = None,
        joystick: Joystick | None = None,
    ) -> None:
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone!r}")
        self.config = config or GamepadConfig()
        if mapping is not None:
            self.mapping = mapping
        self.deadzone = deadzone
        self._pump = None
        if joystick is None:
            joystick, self._pump = _open_joystick(index)
        self._joystick = joystick
        self._check_layout()
        self._latch = EventLatch()
        self._toggled = False
        self._was_down: set[int] = set()

    def _check_layout(self) -> None:
        n_axes, n_buttons = self._joystick.get_numaxes(), self._joystick.get_numbuttons()
        c = self.config
        bad_axes = [a[0] for a in c.axes if a is not None and not 0 <= a[0] < n_axes]
        buttons = (
            c.close_button,
            c.open_button,
            c.toggle_button,
            c.success_button,
            c.failure_button,
            c.end_button,
        )
        bad_buttons = [b for b in buttons if not 0 <= b < n_buttons]
        if bad_axes or bad_buttons:
            raise ValueError(
                f"GamepadConfig uses axes {bad_axes} / buttons {bad_buttons} but this gamepad has {n_axes} axes "
                f"and {n_buttons} buttons; pass a GamepadConfig for its layout"
            )

    def _edges(self) -> set[int]:
        """Buttons pressed since the last read (rising edges)."""
        down = {b for b in range(self._joystick.get_numbuttons()) if self._joystick.get_button(b)}
        pressed, self._was_down = down - self._was_down, down
        return pressed

    def read(self) -> DeviceAction | None:
        if self._pump is not None:
            self._pump()
        c, js = self.config, self._joystick
        pressed = self._edges()
        if c.toggle_button in pressed:
            self._toggled = not self._toggled
        for button, event in (
            (c.success_button, "success"),
            (c.failure_button, "failure"),
            (c.end_button, "end"),
        ):
            if button in pressed:
                self._latch.mark(event)
        raw = np.array([0.0 if a is None else a[1] * js.get_axis(a[0]) for a in c.axes])
        twist = apply_deadzone(raw, self.deadzone)
        close, open_ = bool(js.get_button(c.close_button)), bool(js.get_button(c.open_button))
        gripper = 1.0 if close and not open_ else -1.0 if open_ and not close else None
        if not (self._toggled or np.any(twist) or close or open_):
            return None
        return DeviceAction(twist, gripper)

    def events(self) -> frozenset[Event]:
        return self._latch.drain()

    def close(self) -> None:
        if self._pump is not None:
            import pygame

            pygame.joystick.quit()
            self._pump = None


def _open_joystick(index: int):
    """Open SDL joystick `index` with pygame; returns it and the event pump that refreshes its state."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # the event pump needs a video driver, not a window
    try:
        import pygame
    except ImportError as err:
        raise ImportError(
            f'GamepadDevice needs the [gamepad] extra: pip install "serl-torch[gamepad]" ({err})'
        ) from err
    pygame.display.init()
    pygame.joystick.init()
    count = pygame.joystick.get_count()
    if not 0 <= index < count:
        pygame.quit()
        raise RuntimeError(
            f"no gamepad {index}: SDL sees {count} joystick(s). Plug one in; on Linux the user needs read access "
            "to /dev/input/event* (e.g. be in the 'input' group)"
        )
    joystick = pygame.joystick.Joystick(index)
    joystick.init()
    return joystick, pygame.event.pump

"""GamepadDevice: the default layout through the wrapper (pygame's Joystick replaced at its own boundary), and
the error when SDL finds no gamepad (real pygame, SDL dummy video driver)."""

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.wrappers import InterventionWrapper
from serl_envs.wrappers.devices import GamepadConfig, GamepadDevice


class FakeJoystick:
    """An Xbox-style pad: 6 axes, 11 buttons, whose state the test sets."""

    def __init__(self):
        self.axes, self.buttons = [0.0] * 6, [0] * 11

    def get_numaxes(self):
        return len(self.axes)

    def get_numbuttons(self):
        return len(self.buttons)

    def get_axis(self, i):
        return self.axes[i]

    def get_button(self, i):
        return self.buttons[i]


def test_sticks_buttons_toggle_and_marks():
    pad = FakeJoystick()
    env = InterventionWrapper(gym.make("SerlFrankaPickCube-v0"), GamepadDevice(joystick=pad, deadzone=0.1))
    env.reset(seed=0)
    step = lambda: env.step(env.hold_action())[4]  # noqa: E731
    pad.axes[:2] = [0.05, -0.08]  # stick resting off centre: inside the dead zone
    assert "intervene_action" not in step()
    pad.axes[:2] = [-0.55, -1.0]  # left stick up and left: +x, +y
    np.testing.assert_allclose(step()["intervene_action"], [1.0, 0.5, 0.0, -1.0])
    pad.axes[:2], pad.axes[4] = [0.0, 0.0], 0.55  # right stick down: -z
    np.testing.assert_allclose(step()["intervene_action"], [0.0, 0.0, -0.5, -1.0])
    pad.axes[4], pad.buttons[5] = 0.0, 1  # RB closes
    np.testing.assert_allclose(step()["intervene_action"], [0, 0, 0, 1])
    pad.buttons[5] = 0
    assert "intervene_action" not in step()
    pad.buttons[3] = 1  # Y toggles intervention on (held: counts once)
    np.testing.assert_allclose(step()["intervene_action"], [0, 0, 0, 1])
    np.testing.assert_allclose(step()["intervene_action"], [0, 0, 0, 1])
    pad.buttons[3] = 0
    step()
    pad.buttons[3] = 1  # pressed again: off
    assert "intervene_action" not in step()
    pad.buttons[3], pad.buttons[7] = 0, 1  # Start marks success once
    assert step().get("human_success") is True
    assert "human_success" not in step()
    pad.buttons[7], pad.buttons[6], pad.buttons[1] = 0, 1, 1
    info = step()
    assert info.get("human_failure") is True and info.get("human_end") is True


def test_layout_mismatch_and_missing_gamepad(monkeypatch):
    small = FakeJoystick()
    small.buttons = [0] * 4
    with pytest.raises(ValueError, match=r"buttons \[5, 4, 7, 6\] but this gamepad has 6 axes and 4 buttons"):
        GamepadDevice(joystick=small)
    GamepadDevice(joystick=small, config=GamepadConfig(close_button=0, open_button=1, toggle_button=2,
                                                        success_button=3, failure_button=3, end_button=3))  # fmt: skip
    pytest.importorskip("pygame", reason="the [gamepad] extra is not installed")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    with pytest.raises(RuntimeError, match=r"no gamepad 3: SDL sees \d+ joystick"):
        GamepadDevice(index=3)

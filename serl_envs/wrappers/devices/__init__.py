"""Intervention devices: keyboard, SpaceMouse, gamepad, and scripted ones for tests and sim demos.

Hardware libraries (pynput, easyhid, pygame) are imported only when a device is opened.
"""

from __future__ import annotations

import gymnasium as gym

from serl_envs.wrappers.devices.base import ActionMapping, Device, DeviceAction, Event
from serl_envs.wrappers.devices.gamepad import GamepadConfig, GamepadDevice
from serl_envs.wrappers.devices.keyboard import KeyboardDevice
from serl_envs.wrappers.devices.scripted import ExpertDevice, ScriptedDevice
from serl_envs.wrappers.devices.spacemouse import MODELS, SpaceMouseDevice, parse_report

DEVICE_NAMES = ("keyboard", "spacemouse", "gamepad", "expert")


def make_device(name: str, env: gym.Env) -> Device:
    """The device a command line names (`--device keyboard|spacemouse|gamepad|expert`), with default settings."""
    if name == "keyboard":
        return KeyboardDevice()
    if name == "spacemouse":
        return SpaceMouseDevice()
    if name == "gamepad":
        return GamepadDevice()
    if name == "expert":
        return ExpertDevice(env)
    raise ValueError(f"unknown device {name!r}; expected one of {DEVICE_NAMES}")


__all__ = [
    "DEVICE_NAMES",
    "MODELS",
    "ActionMapping",
    "Device",
    "DeviceAction",
    "Event",
    "ExpertDevice",
    "GamepadConfig",
    "GamepadDevice",
    "KeyboardDevice",
    "ScriptedDevice",
    "SpaceMouseDevice",
    "make_device",
    "parse_report",
]

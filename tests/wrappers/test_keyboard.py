"""KeyboardDevice through InterventionWrapper: real key presses under Xvfb (xdotool), and the terminal fallback
through a pseudo-terminal."""

import os
import pty
import shutil
import subprocess
import sys
import termios
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.demos import open_demos
from serl_envs.wrappers import InterventionWrapper
from serl_envs.wrappers.devices import KeyboardDevice

HALF = 0.5  # KeyboardDevice's default gain


def make_env(device):
    env = InterventionWrapper(gym.make("SerlFrankaPickCube-v0", disable_env_checker=True), device)
    env.reset(seed=0)
    return env


def step_until(env, predicate, timeout=10.0):
    """Step with the idle action until `predicate(info)`; key events reach the device asynchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = env.step(env.hold_action())[4]
        if predicate(info):
            return info
        time.sleep(0.005)
    raise AssertionError("the expected key effect never arrived")


def intervened_with(expected):
    return lambda info: "intervene_action" in info and np.allclose(info["intervene_action"], expected)


def idle(info):
    return "intervene_action" not in info


@pytest.fixture(scope="module")
def xdisplay():
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("needs Xvfb and xdotool (apt-get install xvfb xdotool)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "320x240x24"],
        pass_fds=(write_fd,), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        display = f":{f.readline().strip()}"  # Xvfb picks a free display number and writes it here
    yield display
    # A stopped pynput listener leaves its X connection at the next key event: send one, then let it finish.
    subprocess.run(["xdotool", "key", "shift"], check=True, env={**os.environ, "DISPLAY": display})
    from pynput import keyboard

    for thread in threading.enumerate():
        if isinstance(thread, keyboard.Listener):
            thread.join(timeout=10)
    server.terminate()
    server.wait(timeout=10)


def test_x11_keys_drive_the_arm_and_toggle_and_mark(xdisplay, monkeypatch):
    monkeypatch.setenv("DISPLAY", xdisplay)

    def xdotool(*args):
        subprocess.run(["xdotool", *args], check=True, env={**os.environ, "DISPLAY": xdisplay})

    device = KeyboardDevice()  # auto: X is available
    assert device.backend == "x11"
    env = make_env(device)
    try:
        assert idle(env.step(env.hold_action())[4])
        xdotool("keydown", "w")
        step_until(env, intervened_with([HALF, 0, 0, -1]))
        xdotool("keydown", "d", "e")
        step_until(env, intervened_with([HALF, -HALF, HALF, -1]))
        xdotool("keyup", "w", "d", "e")
        step_until(env, idle)
        xdotool("keydown", "Left", "q")
        step_until(env, intervened_with([0, HALF, -HALF, -1]))
        xdotool("keyup", "Left", "q")
        step_until(env, idle)
        xdotool("key", "g")  # a tap closes the gripper; it then stays closed
        step_until(env, intervened_with([0, 0, 0, 1]))
        step_until(env, idle)
        np.testing.assert_allclose(env.hold_action(), [0, 0, 0, 1])
        xdotool("key", "space")  # toggle on: in control with no key down (the arm holds still)
        info = step_until(env, intervened_with([0, 0, 0, 1]))
        assert device.toggled
        assert "intervene_action" in env.step(env.hold_action())[4]
        xdotool("key", "space")
        step_until(env, idle)
        assert not device.toggled
        xdotool("key", "y")
        info = step_until(env, lambda i: "human_success" in i)
        assert "human_failure" not in info and "intervene_action" not in info
        xdotool("key", "n")
        step_until(env, lambda i: "human_failure" in i)
        xdotool("key", "Return")
        step_until(env, lambda i: "human_end" in i)
    finally:
        env.close()


def test_terminal_fallback_through_a_pty():
    master, slave = pty.openpty()
    saved = termios.tcgetattr(slave)
    device = KeyboardDevice(backend="terminal", fd=slave)
    env = make_env(device)
    try:
        assert not termios.tcgetattr(slave)[3] & (
            termios.ICANON | termios.ECHO
        )  # raw: no line buffering, no echo
        os.write(master, b"w")
        step_until(env, intervened_with([HALF, 0, 0, -1]))
        assert idle(env.step(env.hold_action())[4])  # no key release in a terminal: a press is one step
        os.write(master, b"D")  # upper case works too
        step_until(env, intervened_with([0, -HALF, 0, -1]))
        os.write(master, b"\x1b")  # an arrow sequence split across two reads
        assert idle(env.step(env.hold_action())[4])
        os.write(master, b"[A")
        step_until(env, intervened_with([HALF, 0, 0, -1]))
        os.write(master, b"ui")
        step_until(env, intervened_with([0, 0, 0, -1]))  # rotation keys: PickCube has no rotation dims
        os.write(master, b"g")
        step_until(env, intervened_with([0, 0, 0, 1]))
        os.write(master, b" ")
        step_until(env, intervened_with([0, 0, 0, 1]))
        assert device.toggled
        os.write(master, b" y")
        step_until(env, lambda i: "human_success" in i)
        assert not device.toggled
        os.write(master, b"\r")
        step_until(env, lambda i: "human_end" in i)
    finally:
        env.close()
        assert termios.tcgetattr(slave) == saved  # close() restored the terminal
        os.close(master)
        os.close(slave)


def test_terminal_backend_needs_a_tty():
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(RuntimeError, match=f"fd {read_fd} is not a tty"):
            KeyboardDevice(backend="terminal", fd=read_fd)
        with pytest.raises(ValueError, match="backend must be 'auto', 'x11' or 'terminal', got 'wayland'"):
            KeyboardDevice(backend="wayland")
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_record_demos_with_the_keyboard_under_x(xdisplay, tmp_path):
    """The human path end to end: record-demos at real time with a viewer, keys from xdotool, labelled by `y`."""
    env = {**os.environ, "DISPLAY": xdisplay, "MUJOCO_GL": "egl"}
    cmd = [sys.executable, "-m", "serl_envs.record", "--env", "SerlFrankaPickCube-v0", "--device", "keyboard",
           "--episodes", "1", "--out", str(tmp_path / "kb"), "--view"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout.readline().startswith("recording SerlFrankaPickCube-v0 with the keyboard. w/s")
        subprocess.run(["xdotool", "keydown", "w"], check=True, env=env)
        time.sleep(0.5)  # ~10 steps at 20 Hz
        subprocess.run(["xdotool", "keyup", "w"], check=True, env=env)
        subprocess.run(["xdotool", "key", "y"], check=True, env=env)
        assert proc.stdout.readline().startswith("episode 0 saved")
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    dataset = open_demos(tmp_path / "kb")
    episode = dataset[0]
    assert dataset.total_episodes == 1 and len(episode) < 100  # `y` ended it early
    assert bool(next(iter(dataset.storage.get_episode_metadata([0])))["success"])  # the person's label
    forward = [a for a in episode.actions if np.allclose(a, [HALF, 0, 0, -1])]
    assert len(forward) >= 3 and episode.infos["intervened"].sum() == len(forward)
    assert all(np.allclose(a, [0, 0, 0, -1]) for a in episode.actions if not np.allclose(a, [HALF, 0, 0, -1]))

"""SpaceMouse: our HID report parser on recorded reports, the device's mapping through the wrapper (with the
hidapi device replaced at its own boundary by one that replays reports), and the missing-device error."""

import queue
import time

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.wrappers import InterventionWrapper
from serl_envs.wrappers.devices import SpaceMouseDevice, parse_report
from serl_envs.wrappers.devices.spacemouse import MODELS, SpaceMouseState, apply_deadzone

# SpaceNavigator (older layout), captured with Wireshark/usbmon (AndunHH/spacemouse, SpaceNavigator.md):
# a translation report at rest, a rotation about the second axis, button 1, button 2, both, release.
NAVIGATOR = ["01 00 00 00 00 00 00", "02 00 00 e2 ff 00 00", "03 01 00", "03 02 00", "03 03 00", "03 00 00"]
# SpaceMouse Compact (older layout), logged through hidapi (CloudCompare/CloudCompare PR #2339).
COMPACT = [
    "02 20 00 00 00 17 00", "01 12 00 00 00 f8 00", "02 20 00 00 00 19 00",
    "01 12 00 00 00 12 01", "02 1d 00 00 00 1b 00", "01 0d 00 00 00 25 01",
]  # fmt: skip
# SpaceMouse Wireless (newer layout): report 1 carries x y z rx ry rz as six int16 LE, per its HID report
# descriptor captured with Wireshark (AndunHH/spacemouse, SpaceMouseWireless.md); no raw capture of this
# model's reports was available, so these bytes are laid out from that descriptor.
WIRELESS_MOTION = "01 12 00 fb ff f8 00 20 00 e2 ff 17 00"  # (18, -5, 248, 32, -30, 23)
WIRELESS_BUTTONS = "03 02 00"  # right button


def report(hex_bytes):
    return bytes.fromhex(hex_bytes)


def test_parse_older_layout_recorded_reports():
    assert parse_report("SpaceNavigator", report(NAVIGATOR[0])).translation == (0.0, 0.0, 0.0)
    rotation = parse_report("SpaceNavigator", report(NAVIGATOR[1]))
    assert (
        rotation.rotation == (0.0, -30 / 350, 0.0)
        and rotation.translation is None
        and rotation.buttons is None
    )
    assert [parse_report("SpaceNavigator", report(r)).buttons for r in NAVIGATOR[2:]] == [1, 2, 3, 0]
    state = SpaceMouseState()
    for r in COMPACT:
        state.update(parse_report(MODELS["SpaceMouseCompact"], report(r)))
    np.testing.assert_allclose(state.axes, np.array([13, 0, 293, 29, 0, 27]) / 350)


def test_parse_newer_layout_reports():
    parsed = parse_report("SpaceMouseWireless", report(WIRELESS_MOTION))
    np.testing.assert_allclose(parsed.translation, np.array([18, -5, 248]) / 350)
    np.testing.assert_allclose(parsed.rotation, np.array([32, -30, 23]) / 350)
    assert parse_report("SpaceMouseWireless", report(WIRELESS_BUTTONS)).buttons == 2
    assert parse_report("SpaceMouseEnterprise", report("03 00 10 00 00")).buttons == 1 << 12  # its BTN_1
    assert parse_report("SpaceMouseWireless", report("17 64 01")) == parse_report(
        "SpaceNavigator", report("04 01")
    )


def test_parse_errors_name_the_problem():
    with pytest.raises(
        ValueError, match=r"SpaceMouseWireless report 1 has 7 bytes, expected at least 13 \(combined"
    ):
        parse_report("SpaceMouseWireless", report(COMPACT[1]))
    with pytest.raises(ValueError, match="unknown SpaceMouse model 'SpaceBall'"):
        parse_report("SpaceBall", report(COMPACT[1]))
    with pytest.raises(ValueError, match="empty HID report from SpaceNavigator"):
        parse_report("SpaceNavigator", b"")


def test_deadzone_zeroes_small_values_and_keeps_full_range():
    out = apply_deadzone(np.array([0.05, -0.09, 0.1, 0.55, -1.4]), 0.1)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.0, 0.5, -1.0])


class ReplayedHid:
    """Stands in for easyhid's HIDDevice at its boundary: `read(size, timeout_ms)` returns queued reports."""

    def __init__(self):
        self.reports = queue.Queue()
        self.closed = False

    def read(self, size=64, timeout=None):
        try:
            return bytearray(self.reports.get(timeout=(timeout or 0) / 1000))
        except queue.Empty:
            return bytearray()

    def close(self):
        self.closed = True


def step_until(env, expected, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = env.step(env.hold_action())[4]
        got = info.get("intervene_action")
        if (expected is None and got is None) or (
            expected is not None and got is not None and np.allclose(got, expected, atol=1e-6)
        ):
            return
        time.sleep(0.005)
    raise AssertionError(f"never saw intervene_action {expected}, last {got}")


def test_recorded_compact_reports_drive_peg_insert_through_the_wrapper():
    hid = ReplayedHid()
    device = SpaceMouseDevice(model="SpaceMouseCompact", hid=hid, deadzone=0.1)
    env = InterventionWrapper(gym.make("SerlFrankaPegInsert-v0"), device)
    env.reset(seed=0)
    step_until(env, None)  # at rest: the policy acts
    for r in COMPACT:
        hid.reports.put(report(r))
    # raw (13, 0, 293, 29, 0, 27)/350; pushing the cap down (+z in HID) moves the arm down; the small axes
    # fall in the dead zone
    step_until(env, [0, 0, -(293 / 350 - 0.1) / 0.9, 0, 0, 0])
    hid.reports.put(report("01 00 00 00 00 00 00"))
    hid.reports.put(report("02 00 00 00 00 00 00"))  # released: the device sends zeros
    step_until(env, None)
    env.close()
    assert hid.closed


def test_buttons_close_and_open_the_gripper_and_axis_map_is_configurable():
    hid = ReplayedHid()
    front = ((1, -1.0), (0, 1.0), (2, 1.0), (4, -1.0), (3, 1.0), (5, 1.0))  # operator facing the robot
    device = SpaceMouseDevice(model="SpaceMouseWireless", hid=hid, deadzone=0.0, axis_map=front)
    env = InterventionWrapper(gym.make("SerlFrankaPickCube-v0"), device)
    env.reset(seed=0)
    hid.reports.put(report("03 01 00"))  # left button: close
    step_until(env, [0, 0, 0, 1])
    hid.reports.put(report("03 00 00"))
    step_until(env, None)
    hid.reports.put(report(WIRELESS_BUTTONS))  # right button: open, with the cap deflected
    hid.reports.put(report(WIRELESS_MOTION))
    x, y, z = 18 / 350, 5 / 350, -248 / 350  # operator frame: HID x, -y, -z
    step_until(env, [-y, x, z, -1])
    env.close()


def test_device_arguments_are_checked():
    with pytest.raises(ValueError, match="deadzone must be in"):
        SpaceMouseDevice(model="SpaceNavigator", hid=ReplayedHid(), deadzone=1.0)
    with pytest.raises(ValueError, match="axis_map must use each operator axis 0..5 once"):
        SpaceMouseDevice(model="SpaceNavigator", hid=ReplayedHid(), axis_map=((0, 1.0),) * 6)
    with pytest.raises(ValueError, match="needs model= to know the report layout"):
        SpaceMouseDevice(hid=ReplayedHid())


def test_missing_device_names_the_fix():
    try:
        import easyhid  # noqa: F401
    except (ImportError, OSError):
        with pytest.raises(ImportError, match=r"serl-torch\[spacemouse\]|libhidapi"):
            SpaceMouseDevice()
        return
    with pytest.raises(RuntimeError, match="no SpaceMouse found") as err:
        SpaceMouseDevice()
    message = str(err.value)
    assert "udev" in message and "99-spacemouse.rules" in message and "serl-torch[spacemouse]" in message

"""SpaceMouseDevice: a 3Dconnexion SpaceMouse read as raw HID reports (hidapi through easyhid, extra [spacemouse]).

We parse the reports ourselves (`parse_report`) so every model's layout is data in one table and the parser is
tested on recorded bytes. HID reports: byte 0 is the report id; axes are signed int16 little-endian, divided by
350 (full deflection is about ±1, not clamped by the device). Older models (SpaceNavigator, Explorer, Pro,
Compact, Pilot) send x, y, z in report 1 and rx, ry, rz in report 2 (bytes 1-6 each); newer ones (Wireless,
Enterprise, Pro Wireless, Universal Receiver) send all six axes in report 1 (bytes 1-12). Report 3 holds the
buttons as a bit mask. Raw HID axes are right-handed with z down (x right, y towards the user, z into the desk).

Mapping to a robot action: raw axes x per-model signs -> operator frame (x right, y away from the user, z up,
rotations right-handed about those) -> `axis_map` -> robot base frame, then a per-axis dead zone. The default
`axis_map` assumes the operator stands behind the robot looking along its +x. As HIL-SERL, the left button
closes the gripper and the right one opens it (bits of each model's table entry), and the person is in control
whenever the cap is deflected past the dead zone or a button is down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from serl_envs.wrappers.devices.base import ActionMapping, Device, DeviceAction

AXIS_SCALE = 350.0
Layout = Literal["split", "combined"]
HID_TO_OPERATOR = (1.0, -1.0, -1.0, 1.0, -1.0, -1.0)  # z-down HID frame -> z-up operator frame (180° about x)
BEHIND_ROBOT = (
    (1, 1.0),
    (0, -1.0),
    (2, 1.0),
    (4, 1.0),
    (3, -1.0),
    (5, 1.0),
)  # robot axis <- (operator axis, sign)
UDEV_HINT = (
    "on Linux, /dev/hidraw* must be readable: add a udev rule, e.g. "
    '\'KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0666"\' (and "046d" for older models) to '
    "/etc/udev/rules.d/99-spacemouse.rules, then run 'sudo udevadm control --reload-rules && sudo udevadm trigger' "
    "and re-plug the device"
)


@dataclass(frozen=True)
class SpaceMouseModel:
    """One product: USB ids, report layout, signs from raw HID axes to the operator frame, gripper buttons."""

    name: str
    vendor_id: int
    product_id: int
    layout: Layout
    close_button: int | None = 0  # bit index in report 3 (byte 1 bit 0 = 0, byte 2 bit 0 = 8, ...)
    open_button: int | None = 1
    signs: tuple[float, ...] = HID_TO_OPERATOR


MODELS: dict[str, SpaceMouseModel] = {
    m.name: m
    for m in (
        SpaceMouseModel("SpaceNavigator", 0x046D, 0xC626, "split"),
        SpaceMouseModel("SpaceExplorer", 0x046D, 0xC627, "split"),
        SpaceMouseModel("SpaceMousePro", 0x046D, 0xC62B, "split", close_button=12, open_button=13),
        SpaceMouseModel("SpacePilot", 0x046D, 0xC625, "split"),
        SpaceMouseModel("SpacePilotPro", 0x046D, 0xC629, "split", close_button=17, open_button=18),
        SpaceMouseModel("SpaceMouseCompact", 0x256F, 0xC635, "split"),
        SpaceMouseModel("SpaceMouseUSB", 0x256F, 0xC641, "split", close_button=None, open_button=None),
        SpaceMouseModel("SpaceMouseWireless", 0x256F, 0xC62E, "combined"),
        SpaceMouseModel("SpaceMouseWirelessNew", 0x256F, 0xC63A, "combined"),
        SpaceMouseModel("SpaceMouseEnterprise", 0x256F, 0xC633, "combined", close_button=12, open_button=13),
        SpaceMouseModel("SpaceMouseProWireless", 0x256F, 0xC632, "combined", close_button=12, open_button=13),
        SpaceMouseModel(
            "SpaceMouseProWirelessBT", 0x256F, 0xC638, "combined", close_button=12, open_button=13
        ),
        SpaceMouseModel("UniversalReceiver", 0x256F, 0xC652, "combined", close_button=12, open_button=13),
    )
}


@dataclass(frozen=True)
class SpaceMouseReport:
    """What one HID report carries; None for the parts it does not carry. Axes are raw HID / 350."""

    translation: tuple[float, float, float] | None = None
    rotation: tuple[float, float, float] | None = None
    buttons: int | None = None  # bit mask


def _axes(report: bytes, start: int, count: int) -> tuple[float, ...]:
    raw = np.frombuffer(bytes(report[start : start + 2 * count]), dtype="<i2")
    return tuple(float(v) / AXIS_SCALE for v in raw)


def parse_report(model: SpaceMouseModel | str, report: bytes | bytearray) -> SpaceMouseReport:
    """Decode one raw HID report of `model` (a `SpaceMouseModel` or a name in `MODELS`).

    Reports other than motion (1, 2) and buttons (3) — LED, battery — carry nothing we use and decode empty.
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"unknown SpaceMouse model {model!r}; known models: {sorted(MODELS)}")
        model = MODELS[model]
    report = bytes(report)
    if not report:
        raise ValueError(f"empty HID report from {model.name}")
    report_id = report[0]
    need = {1: 13 if model.layout == "combined" else 7, 2: 7, 3: 2}.get(report_id, 1)
    if len(report) < need:
        raise ValueError(
            f"{model.name} report {report_id} has {len(report)} bytes, expected at least {need} "
            f"({model.layout} layout): {report.hex(' ')}"
        )
    if report_id == 1 and model.layout == "combined":
        axes = _axes(report, 1, 6)
        return SpaceMouseReport(translation=axes[:3], rotation=axes[3:])
    if report_id == 1:
        return SpaceMouseReport(translation=_axes(report, 1, 3))
    if report_id == 2 and model.layout == "split":
        return SpaceMouseReport(rotation=_axes(report, 1, 3))
    if report_id == 3:
        return SpaceMouseReport(buttons=int.from_bytes(report[1:], "little"))
    return SpaceMouseReport()


class SpaceMouseState:
    """Latest raw axes and buttons, updated report by report (a split device sends translation and rotation apart)."""

    def __init__(self) -> None:
        self.axes = np.zeros(6)
        self.buttons = 0

    def update(self, report: SpaceMouseReport) -> None:
        if report.translation is not None:
            self.axes[:3] = report.translation
        if report.rotation is not None:
            self.axes[3:] = report.rotation
        if report.buttons is not None:
            self.buttons = report.buttons


def apply_deadzone(values: np.ndarray, deadzone: float) -> np.ndarray:
    """Zero |v| < deadzone and rescale the rest so the output still starts at 0 and reaches ±1."""
    v = np.clip(values, -1.0, 1.0)
    return np.where(np.abs(v) < deadzone, 0.0, np.sign(v) * (np.abs(v) - deadzone) / (1.0 - deadzone))


class HidDevice(Protocol):
    """The part of an open hidapi device we use (easyhid's `HIDDevice`)."""

    def read(self, size: int = 64, timeout: int | None = None) -> bytes | bytearray: ...

    def close(self) -> None: ...


class SpaceMouseDevice(Device):
    """A SpaceMouse as an intervention device; a background thread keeps the latest state of the cap.

    Args:
        model: a name in `MODELS`; None picks the first supported device found.
        deadzone: per-axis dead zone on the ±1 axes (the cap never rests exactly at 0).
        axis_map: for each robot axis (x y z rx ry rz), the operator-frame axis it reads and a sign.
        mapping: gains to env actions (default 1: full deflection = the task's full speed).
        hid: an already open HID device (reads raw reports; needs `model`); None opens one through easyhid.
    """

    hint = "push/tilt the cap to move, left button closes, right button opens the gripper"

    def __init__(
        self,
        model: str | None = None,
        deadzone: float = 0.1,
        axis_map: tuple[tuple[int, float], ...] = BEHIND_ROBOT,
        mapping: ActionMapping | None = None,
        hid: HidDevice | None = None,
    ) -> None:
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone!r}")
        if sorted(src for src, _ in axis_map) != list(range(6)) or any(
            s not in (-1.0, 1.0) for _, s in axis_map
        ):
            raise ValueError(f"axis_map must use each operator axis 0..5 once with sign ±1, got {axis_map!r}")
        if model is not None and model not in MODELS:
            raise ValueError(f"unknown SpaceMouse model {model!r}; known models: {sorted(MODELS)}")
        if mapping is not None:
            self.mapping = mapping
        self.deadzone, self.axis_map = deadzone, axis_map
        if hid is None:
            self.model, hid = open_spacemouse(model)
        elif model is None:
            raise ValueError("SpaceMouseDevice(hid=...) needs model= to know the report layout")
        else:
            self.model = MODELS[model]
        self._hid = hid
        self._state = SpaceMouseState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.error: Exception | None = None  # set if the reader thread died (device unplugged)
        self._thread = threading.Thread(target=self._read_loop, name="spacemouse", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._hid.read(64, 20)
                if data:
                    report = parse_report(self.model, data)
                    with self._lock:
                        self._state.update(report)
        except Exception as err:  # surfaced to the caller of read()
            self.error = err

    def read(self) -> DeviceAction | None:
        if self.error is not None:
            raise RuntimeError(
                f"SpaceMouse {self.model.name} stopped reporting: {self.error}"
            ) from self.error
        with self._lock:
            axes, buttons = self._state.axes.copy(), self._state.buttons
        operator = axes * np.asarray(self.model.signs)
        twist = apply_deadzone(np.array([sign * operator[src] for src, sign in self.axis_map]), self.deadzone)
        close = self.model.close_button is not None and bool(buttons >> self.model.close_button & 1)
        open_ = self.model.open_button is not None and bool(buttons >> self.model.open_button & 1)
        gripper = 1.0 if close and not open_ else -1.0 if open_ and not close else None
        if not np.any(twist) and buttons == 0:
            return None
        return DeviceAction(twist, gripper)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if self._hid is not None:
            self._hid.close()
            self._hid = None


def open_spacemouse(model: str | None = None) -> tuple[SpaceMouseModel, HidDevice]:
    """Find and open a supported SpaceMouse through hidapi; errors say what to install or configure."""
    try:
        import easyhid
    except ImportError as err:
        raise ImportError(
            f'SpaceMouseDevice needs the [spacemouse] extra: pip install "serl-torch[spacemouse]" ({err})'
        ) from err
    except OSError as err:  # easyhid loads the hidapi C library at import
        raise ImportError(
            "SpaceMouseDevice needs the hidapi system library: apt-get install libhidapi-hidraw0 "
            f"(Debian/Ubuntu) or brew install hidapi (macOS) ({err})"
        ) from err
    wanted = [MODELS[model]] if model is not None else list(MODELS.values())
    for m in wanted:
        for dev in easyhid.Enumeration().find(vid=m.vendor_id, pid=m.product_id):
            try:
                dev.open()
            except easyhid.HIDException as err:
                raise PermissionError(
                    f"found a {m.name} at {dev.path} but cannot open it ({err}); {UDEV_HINT}"
                ) from err
            return m, dev
    names = ", ".join(m.name for m in wanted)
    raise RuntimeError(
        f"no SpaceMouse found (looked for {names}). Plug it in and check 'lsusb'; the Python side needs "
        f'pip install "serl-torch[spacemouse]" and the hidapi library (apt-get install libhidapi-hidraw0); {UDEV_HINT}'
    )

"""A stand-in for the `pyrealsense2` module, at the SDK's own boundary: the classes and calls the RealSense SDK
exposes (context/query_devices, config.enable_device/enable_stream, pipeline.start/wait_for_frames/stop, the color
sensor's set_option), behaving as the SDK does: `wait_for_frames(timeout_ms)` raises
`RuntimeError("Frame didn't arrive within <timeout_ms>")`, a video frame's memory is reused for the next frame
(overwritten as soon as the next wait begins), and
`start` refuses a stream the device cannot deliver with "Couldn't resolve requests".

The test plays the camera: `FakeDevice.push(rgb)` delivers one frame (with a depth frame beside it, as a D4xx does).
"""

from __future__ import annotations

import queue
import types

import numpy as np

MODES = {(640, 480, 30), (640, 480, 15), (1280, 720, 30), (320, 240, 30)}  # color modes the fake device offers


class _Enum:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


class stream:  # noqa: N801 - the SDK's names
    color = _Enum("stream.color")
    depth = _Enum("stream.depth")


class format:  # noqa: A001, N801
    rgb8 = _Enum("format.rgb8")
    bgr8 = _Enum("format.bgr8")
    z16 = _Enum("format.z16")


class camera_info:  # noqa: N801
    serial_number = _Enum("camera_info.serial_number")
    name = _Enum("camera_info.name")


class option:  # noqa: N801
    exposure = _Enum("option.exposure")
    enable_auto_exposure = _Enum("option.enable_auto_exposure")
    laser_power = _Enum("option.laser_power")  # a depth-sensor option: the color sensor refuses it


class FakeDevice:
    """One connected camera: the frames the test pushes, the options set on its color sensor, its lifecycle."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.frames: queue.Queue[np.ndarray] = queue.Queue()
        self.options: dict[str, float] = {}
        self.started_with: list[tuple] | None = None
        self.stopped = False

    def push(self, rgb: np.ndarray) -> None:
        self.frames.put(np.asarray(rgb, np.uint8))

    def get_info(self, info: _Enum) -> str:
        if info is camera_info.serial_number:
            return self.serial
        return "Intel RealSense D435 (fake)"

    def first_color_sensor(self) -> _ColorSensor:
        return _ColorSensor(self)


class _ColorSensor:
    def __init__(self, device: FakeDevice) -> None:
        self._device = device

    def set_option(self, opt: _Enum, value: float) -> None:
        if opt not in (option.exposure, option.enable_auto_exposure):
            raise RuntimeError(f"object doesn't support option #{opt.name}")
        self._device.options[opt.name.split(".")[1]] = float(value)


class context:  # noqa: N801
    devices: list[FakeDevice] = []  # set by the test

    def query_devices(self) -> list[FakeDevice]:
        return list(context.devices)


class config:  # noqa: N801
    def __init__(self) -> None:
        self.serial: str | None = None
        self.streams: list[tuple] = []

    def enable_device(self, serial: str) -> None:
        self.serial = serial

    def enable_stream(self, kind: _Enum, width: int, height: int, fmt: _Enum, framerate: int) -> None:
        self.streams.append((kind, width, height, fmt, framerate))


class _Profile:
    def __init__(self, device: FakeDevice) -> None:
        self._device = device

    def get_device(self) -> FakeDevice:
        return self._device


class _VideoFrame:
    def __init__(self, buffer: np.ndarray | None) -> None:
        self._buffer = buffer

    def __bool__(self) -> bool:
        return self._buffer is not None

    def get_data(self) -> memoryview:
        return memoryview(self._buffer)


class _FrameSet:
    def __init__(self, color: np.ndarray | None) -> None:
        self._color = color

    def get_color_frame(self) -> _VideoFrame:
        return _VideoFrame(self._color)

    def get_depth_frame(self) -> _VideoFrame:
        return _VideoFrame(np.zeros((480, 640), np.uint16))


class pipeline:  # noqa: N801
    def __init__(self, ctx: context | None = None) -> None:
        self._device: FakeDevice | None = None
        self._buffer: np.ndarray | None = None

    def start(self, cfg: config) -> _Profile:
        device = next((d for d in context.devices if d.serial == cfg.serial), None)
        if device is None:
            raise RuntimeError("No device connected")
        for kind, width, height, fmt, fps in cfg.streams:
            if kind is stream.color and ((width, height, fps) not in MODES or fmt not in (format.rgb8, format.bgr8)):
                raise RuntimeError("Couldn't resolve requests")
        device.started_with, device.stopped = list(cfg.streams), False
        self._device = device
        return _Profile(device)

    def wait_for_frames(self, timeout_ms: int = 5000) -> _FrameSet:
        if self._device is None:
            raise RuntimeError("wait_for_frames cannot be called before start()")
        if self._buffer is not None:
            self._buffer[...] = 0  # the previous frame's memory is back in the SDK's pool, being filled again
        try:
            rgb = self._device.frames.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise RuntimeError(f"Frame didn't arrive within {timeout_ms}") from None
        if self._buffer is None or self._buffer.shape != rgb.shape:
            self._buffer = np.empty_like(rgb)
        self._buffer[...] = rgb  # the SDK hands out the same memory again for the next frame
        return _FrameSet(self._buffer)

    def stop(self) -> None:
        if self._device is None:
            raise RuntimeError("stop() cannot be called before start()")
        self._device.stopped = True
        self._device = None


def module(devices: list[FakeDevice]) -> types.ModuleType:
    """A `pyrealsense2` module object with these devices connected."""
    mod = types.ModuleType("pyrealsense2")
    context.devices = devices
    for name in ("stream", "format", "camera_info", "option", "context", "config", "pipeline"):
        setattr(mod, name, globals()[name])
    return mod

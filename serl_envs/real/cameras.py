"""Cameras read in the env's process: any OpenCV camera and Intel RealSense, each behind a thread keeping the latest frame.

The arm's real-time loop runs in the robot server's process; cameras and image processing run here, in the env's
process, so they never steal its cycles (the cause of libfranka's `communication_constraints_violation` reflexes).
A reader thread grabs frames as fast as the camera delivers them and keeps only the newest, so a read never returns
a frame that queued up behind others. `read()` returns that frame cropped to the config's `crop` and resized to its
`size`; a camera silent for more than `stale_after` seconds, or whose thread died, raises `CameraError` naming the
camera, instead of feeding the policy a frozen picture (SERL blocks on a "camera frozen" prompt instead).

```python
with OpenCVCamera(CameraConfig("front", "opencv", device=0, crop=(80, 0, 560, 480), size=(128, 128))) as camera:
    image = camera.read()  # uint8 (128, 128, 3), RGB
```
The twin's rendered cameras stay `source="server"`: the robot server serves them (see `HttpRobot.cameras`).
"""

from __future__ import annotations

import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from serl_envs.real.config import CameraConfig, check_crop

RETRY_DELAY = 0.05  # s the reader waits after a failed grab before it tries again
CLOSE_TIMEOUT = 2.0  # s close() waits for the reader thread to stop
REALSENSE_SIZE = (480, 640)  # (H, W) of the color stream when the config sets no capture_size
REALSENSE_FPS = 30


class CameraError(RuntimeError):
    """A camera stopped delivering frames, could not be opened, or its reader thread died."""


class NoFrame(Exception):
    """A source had no frame this time (a timeout, a failed grab); the reader tries again."""


class StreamEnded(Exception):
    """A source has no more frames (the end of a video file)."""


class FrameSource(Protocol):
    """What a reader thread grabs from: one opened device, used only by that thread once it runs."""

    description: str  # names the device in errors: "opencv 0", "realsense 017322071728"
    frame_size: tuple[int, int]  # (H, W) of every frame it delivers

    def grab(self) -> np.ndarray:
        """Block until the next frame (uint8 RGB (H, W, 3), not shared); NoFrame or StreamEnded otherwise."""
        ...

    def release(self) -> None: ...


def _cv2():
    try:
        import cv2
    except ModuleNotFoundError as err:
        raise ImportError('OpenCV cameras and camera crop/resize need opencv-python-headless: '
                          'pip install "serl-torch[cameras]"') from err
    return cv2


def _rs():
    try:
        import pyrealsense2 as rs
    except ModuleNotFoundError as err:
        raise ImportError('RealSense cameras need pyrealsense2: pip install "serl-torch[realsense]" '
                          "(and the system library libusb-1.0-0)") from err
    return rs


class Camera(ABC):
    """A camera giving one uint8 (H, W, 3) RGB image per `read()`; close it (or use `with`) to free the device."""

    name: str

    @abstractmethod
    def read(self) -> np.ndarray:
        """The newest image, processed to the configured size; CameraError when the camera stopped delivering."""

    @abstractmethod
    def close(self) -> None:
        """Stop reading and free the device; closing twice is harmless."""

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ThreadedCamera(Camera):
    """A background thread grabs frames from a `FrameSource` and keeps the newest; `read()` crops and resizes it.

    Subclasses say how to open their device (`_open`). The source is opened in the constructor, so a missing
    device, an SDK that is not installed or a crop outside the image fail there, before any step.
    """

    source_kind: str = ""

    def __init__(self, config: CameraConfig) -> None:
        if config.source != self.source_kind:
            raise ValueError(f"camera {config.name!r}: {type(self).__name__} reads source {self.source_kind!r}, "
                             f"the config has source {config.source!r}")
        self.config, self.name = config, config.name
        source = self._open(config)
        try:
            if config.crop is not None:
                check_crop(config.name, config.crop, source.frame_size)
            cropped = source.frame_size if config.crop is None else (config.crop[3] - config.crop[1],
                                                                     config.crop[2] - config.crop[0])
            self._cv2 = _cv2() if tuple(cropped) != config.size else None  # resizing needs OpenCV
        except BaseException:
            source.release()
            raise
        self._source, self._frame_shape = source, (*source.frame_size, 3)
        self.label = f"camera {config.name!r} ({source.description})"
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._count = 0
        self._error: BaseException | None = None
        self._ended: str | None = None  # why the stream ended, once it has
        self._issue: str | None = None  # the last failed grab since the last frame
        self._closed = False
        self._stop = threading.Event()
        self._opened = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{config.name}", daemon=True)
        self._thread.start()

    @abstractmethod
    def _open(self, config: CameraConfig) -> FrameSource:
        """Open the device of `config`; raise ValueError for settings it refuses, CameraError if it is missing."""

    @property
    def frame_count(self) -> int:
        """Frames grabbed since opening (most of them replaced unread by newer ones)."""
        with self._cond:
            return self._count

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self._source.grab()
                except NoFrame as err:
                    with self._cond:
                        self._issue = str(err)
                    self._stop.wait(RETRY_DELAY)
                    continue
                if frame.shape != self._frame_shape or frame.dtype != np.uint8:
                    raise CameraError(f"{self.label} delivered a {frame.dtype} frame of shape {frame.shape}, "
                                      f"expected uint8 {self._frame_shape}")
                with self._cond:
                    self._frame, self._stamp, self._issue = frame, time.monotonic(), None
                    self._count += 1
                    self._cond.notify_all()
        except StreamEnded as end:
            with self._cond:
                self._ended = str(end)
                self._cond.notify_all()
        except BaseException as err:  # the reader is dead: every later read says why
            with self._cond:
                if not self._stop.is_set():
                    self._error = err
                self._cond.notify_all()
        finally:
            self._source.release()

    def read(self) -> np.ndarray:
        cfg = self.config
        with self._cond:
            if self._closed:
                raise CameraError(f"{self.label} is closed")
            deadline = self._opened + cfg.startup_timeout
            while self._frame is None and self._error is None and self._ended is None and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:  # closed by another thread while this read waited for the first frame
                raise CameraError(f"{self.label} is closed")
            if self._error is not None:
                err = self._error
                raise CameraError(f"{self.label}: its reader thread died: {type(err).__name__}: {err}") from err
            why = f"; {self._ended}" if self._ended else f"; last error: {self._issue}" if self._issue else ""
            if self._frame is None:
                raise CameraError(f"{self.label} delivered no frame within {cfg.startup_timeout:g} s of opening{why}")
            silent = time.monotonic() - self._stamp
            if silent > cfg.stale_after:
                raise CameraError(f"{self.label} has delivered no frame for {silent:.2f} s "
                                  f"(stale_after {cfg.stale_after:g} s){why}")
            frame = self._frame
        return self._process(frame)

    def _process(self, frame: np.ndarray) -> np.ndarray:
        """Crop to the config's box, resize to its size: a new array, never the stored frame."""
        if self.config.crop is not None:
            x0, y0, x1, y1 = self.config.crop
            frame = frame[y0:y1, x0:x1]
        if self._cv2 is None:
            return frame.copy()
        h, w = self.config.size
        return self._cv2.resize(frame, (w, h), interpolation=self._cv2.INTER_AREA)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            warnings.warn(f"{self.label}: the reader thread is still blocked in a grab after {CLOSE_TIMEOUT:g} s; "
                          "it frees the device when that grab returns", RuntimeWarning, stacklevel=2)


# --- OpenCV ---------------------------------------------------------------------------------------------------
class _OpenCVSource:
    """cv2.VideoCapture on a device index, a /dev/video path, a stream URL or a video file (played at `fps`)."""

    def __init__(self, config: CameraConfig) -> None:
        cv2 = self._cv2 = _cv2()
        device, name = config.device, config.name
        self.description = f"opencv {device!r}"
        self._file = isinstance(device, str) and Path(device).is_file()
        self._loop, self._pending = config.loop, None
        cap = self._cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            cap.release()
            hint = "" if not isinstance(device, str) or "://" in device or Path(device).exists() else "; no such file"
            raise CameraError(f"camera {name!r}: OpenCV cannot open device {device!r}{hint}")
        try:
            if not self._file:
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued in the driver
                if config.capture_size is not None:
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, config.capture_size[0])
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, config.capture_size[1])
                if config.fps is not None:
                    cap.set(cv2.CAP_PROP_FPS, config.fps)
            for key, value in config.options.items():
                prop = getattr(cv2, f"CAP_PROP_{key.upper()}", None)
                if prop is None:
                    raise ValueError(f"camera {name!r}: options.{key}: OpenCV has no capture property "
                                     f"CAP_PROP_{key.upper()}")
                if not cap.set(prop, float(value)):
                    raise ValueError(f"camera {name!r}: options.{key}: {self.description} refused {key}={value}")
            self.frame_size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
            if min(self.frame_size) < 1:  # some streams tell their size only with the first frame
                self._pending = self._first_frame(name)
                self.frame_size = self._pending.shape[:2]
            if config.capture_size is not None and self.frame_size != config.capture_size:
                raise ValueError(f"camera {name!r}: capture_size {config.capture_size} (H, W) asked, "
                                 f"{self.description} delivers {self.frame_size}")
            rate = config.fps or (cap.get(cv2.CAP_PROP_FPS) if self._file else 0.0) or 30.0
            self._period, self._next = 1.0 / rate, 0.0
        except BaseException:
            cap.release()
            raise

    def _first_frame(self, name: str) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok:
            raise CameraError(f"camera {name!r}: {self.description} opened but delivered no frame")
        return self._rgb(frame)

    def _rgb(self, frame: np.ndarray) -> np.ndarray:
        code = self._cv2.COLOR_GRAY2RGB if frame.ndim == 2 else self._cv2.COLOR_BGR2RGB
        return self._cv2.cvtColor(frame, code)

    def grab(self) -> np.ndarray:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._file:  # a file decodes as fast as asked: play it at its frame rate, as a camera would deliver it
            now = time.monotonic()
            self._next = max(self._next, now)
            time.sleep(self._next - now)
            self._next += self._period
        ok, frame = self._cap.read()
        if not ok and self._file and self._loop and self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0):
            ok, frame = self._cap.read()
        if not ok:
            if self._file:
                raise StreamEnded(f"the video file ended after {int(self._cap.get(self._cv2.CAP_PROP_POS_FRAMES))} "
                                  "frames")
            raise NoFrame(f"{self.description} returned no frame")
        return self._rgb(frame)

    def release(self) -> None:
        self._cap.release()


class OpenCVCamera(ThreadedCamera):
    """Any camera OpenCV opens (`device`: index, /dev/video path, stream URL) or a video file played at `fps`
    (`loop` to replay it). `options` set capture properties by name: {"exposure": -6} sets CAP_PROP_EXPOSURE."""

    source_kind = "opencv"

    def _open(self, config: CameraConfig) -> FrameSource:
        return _OpenCVSource(config)


# --- RealSense ------------------------------------------------------------------------------------------------
class _RealSenseSource:
    """The color stream of one RealSense (by serial) through pyrealsense2; depth is not enabled."""

    def __init__(self, config: CameraConfig) -> None:
        rs = _rs()
        name, serial = config.name, config.serial
        self.description = f"realsense {serial}"
        ctx = rs.context()
        connected = [device.get_info(rs.camera_info.serial_number) for device in ctx.query_devices()]
        if serial not in connected:
            raise CameraError(f"camera {name!r}: no RealSense with serial {serial} is connected "
                              f"(connected: {connected})")
        h, w = config.capture_size or REALSENSE_SIZE
        fps = round(config.fps or REALSENSE_FPS)
        rs_config = rs.config()
        rs_config.enable_device(serial)
        rs_config.enable_stream(rs.stream.color, w, h, rs.format.rgb8, fps)
        self._pipeline = rs.pipeline(ctx)
        try:
            profile = self._pipeline.start(rs_config)
        except RuntimeError as err:
            raise ValueError(f"camera {name!r}: RealSense {serial} cannot stream color at capture_size {(h, w)} "
                             f"(H, W) and fps {fps}: {err}") from err
        try:
            sensor = profile.get_device().first_color_sensor()
            for key, value in config.options.items():
                option = getattr(rs.option, key, None)
                if option is None:
                    raise ValueError(f"camera {name!r}: options.{key}: pyrealsense2 has no option rs.option.{key}")
                try:
                    sensor.set_option(option, float(value))
                except RuntimeError as err:
                    raise ValueError(f"camera {name!r}: options.{key}: RealSense {serial} refused {key}={value}: "
                                     f"{err}") from err
        except BaseException:
            self._pipeline.stop()
            raise
        self.frame_size = (h, w)
        # wait_for_frames times out well before the camera counts as stale, so a stale error can say why
        self._timeout_ms = max(1, round(1000 * min(config.stale_after / 2, 1.0)))

    def grab(self) -> np.ndarray:
        try:
            frames = self._pipeline.wait_for_frames(self._timeout_ms)
        except RuntimeError as err:  # "Frame didn't arrive within ...": a silent camera, reported by read()
            raise NoFrame(str(err)) from err
        color = frames.get_color_frame()
        if not color:
            raise NoFrame("a frame set without a color frame")
        return np.asanyarray(color.get_data()).copy()  # the SDK reuses the buffer

    def release(self) -> None:
        self._pipeline.stop()


class RealSenseCamera(ThreadedCamera):
    """The color stream of an Intel RealSense chosen by `serial`; `options` set sensor options by their
    pyrealsense2 names ({"exposure": 10000, "enable_auto_exposure": 0})."""

    source_kind = "realsense"

    def _open(self, config: CameraConfig) -> FrameSource:
        return _RealSenseSource(config)


# --- from the station config ----------------------------------------------------------------------------------
CAMERA_CLASSES: dict[str, type[ThreadedCamera]] = {"opencv": OpenCVCamera, "realsense": RealSenseCamera}


def open_camera(config: CameraConfig) -> Camera:
    """The reader of a local camera of the station config."""
    if config.source not in CAMERA_CLASSES:
        raise ValueError(f"camera {config.name!r}: source {config.source!r} is not read in the env's process; local "
                         f"sources: {sorted(CAMERA_CLASSES)}")
    return CAMERA_CLASSES[config.source](config)


def open_cameras(configs: Iterable[CameraConfig]) -> dict[str, Camera]:
    """Open every camera, or none: when one fails, those already opened are closed again."""
    opened: dict[str, Camera] = {}
    try:
        for config in configs:
            opened[config.name] = open_camera(config)
    except BaseException:
        for camera in opened.values():
            camera.close()
        raise
    return opened

"""Station config: the per-robot-station values of a real env, from kwargs or a YAML/JSON file, never from source.

A station is one arm at one workcell: where the goal is (`target_pose`, e.g. the fully inserted peg, measured with
`serl record-pose`), where episodes start (`reset_pose`), the safety box, the impedance parameters, the cameras,
the robot server's URL and its limits. Defaults are the sim task's own values, so the twin works as is; a real
station overrides them in its file:

```yaml
robot_url: http://127.0.0.1:5000
control_hz: 10
target_pose: {position: [0.52, 0.03, 0.06], quat: [0.0, 1.0, 0.0, 0.0]}   # w, x, y, z
reset_pose: [0.52, 0.03, 0.16, 0.0, 1.0, 0.0, 0.0]                          # or x y z qw qx qy qz
safety_box: {low: [0.42, -0.07, 0.055], high: [0.62, 0.13, 0.2], rot_low: [-0.1, -0.1, -0.7], rot_high: [0.1, 0.1, 0.7]}
compliance: {translational_stiffness: 2000, translational_clip: [0.01, 0.01, 0.01]}
cameras:                                                                    # default: the twin's served renders
  - {name: front, source: opencv, device: 0, crop: [80, 0, 560, 480]}      # crop: x0 y0 x1 y1, then resized to size
  - {name: wrist, source: realsense, serial: "017322071728", options: {exposure: 120}}
limits: {watchdog_timeout: 0.5}
```
The bearer token is never read from the file: pass `token=` or set `SERL_ROBOT_TOKEN`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.spaces import SafetyBox
from serl_envs.task import DOWN_QUAT

DEFAULT_URL = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Pose:
    """A TCP pose in the robot base frame: position (m) and quaternion (w, x, y, z)."""

    position: tuple[float, float, float]
    quat: tuple[float, float, float, float] = tuple(DOWN_QUAT.tolist())

    def __post_init__(self) -> None:
        try:  # plain float tuples, whatever sequence of numbers came in (YAML lists, numpy arrays)
            object.__setattr__(self, "position", tuple(float(v) for v in self.position))
            object.__setattr__(self, "quat", tuple(float(v) for v in self.quat))
        except (TypeError, ValueError) as err:
            raise ValueError(f"Pose needs numbers, got position {self.position!r} quat {self.quat!r}") from err
        if len(self.position) != 3 or not np.all(np.isfinite(self.position)):
            raise ValueError(f"Pose.position must be 3 finite numbers, got {self.position}")
        if len(self.quat) != 4 or not np.all(np.isfinite(self.quat)) or abs(np.linalg.norm(self.quat) - 1) > 1e-3:
            raise ValueError(f"Pose.quat must be a unit quaternion (w, x, y, z), got {self.quat}")

    def as_array(self) -> np.ndarray:
        """x y z qw qx qy qz, the layout of the server's `cartesian_position`."""
        return np.array([*self.position, *self.quat])


CAMERA_SOURCES = ("server", "opencv", "realsense")
LOCAL_ONLY = ("device", "serial", "crop", "capture_size", "fps", "loop", "stale_after", "startup_timeout",
              "options")  # fields of env-side cameras only


def _ints(value: Any, n: int) -> tuple[int, ...] | None:
    """`value` as n Python ints, or None when it is not n integral numbers."""
    try:
        items = tuple(value)
    except TypeError:
        return None
    if len(items) != n or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                  and float(v).is_integer() for v in items):
        return None
    return tuple(int(v) for v in items)


@dataclass(frozen=True)
class CameraConfig:
    """One camera of the station and where its frames come from.

    `source="server"`: the robot server's cameras (the twin's renders), served at `size`. `"opencv"` (any camera
    OpenCV opens: a device index, a /dev/video path, a video file or a stream URL; `pip install
    "serl-torch[cameras]"`) and `"realsense"` (by serial number; `pip install "serl-torch[realsense]"`) are read in
    the env's process by `serl_envs.real.cameras`, never next to the arm's real-time loop: a thread keeps the latest
    frame, and each observation is that frame cropped to `crop` and resized to `size`.
    """

    name: str
    source: str = "server"
    size: tuple[int, int] = (128, 128)  # (H, W) of the observation
    device: int | str | None = None  # opencv: device index, /dev/video path, video file or stream URL
    serial: str | None = None  # realsense: the serial number (`rs-enumerate-devices`), a string
    crop: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) pixels of the captured frame, end exclusive
    capture_size: tuple[int, int] | None = None  # (H, W) asked of the device; None: its default (realsense 480x640)
    fps: float | None = None  # frames/s asked of the device; a video file is played at this rate (None: its own)
    loop: bool = False  # opencv video file: start again at its end instead of going silent
    stale_after: float = 1.0  # s without a new frame before a read raises CameraError
    startup_timeout: float = 5.0  # s the first frame may take after opening (RealSense needs warm-up frames)
    options: Mapping[str, float] = field(default_factory=dict)  # device settings by SDK name, e.g. {exposure: 100}

    def __post_init__(self) -> None:
        where = f"camera {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"camera name must be a non-empty string, got {self.name!r}")
        if self.source not in CAMERA_SOURCES:
            raise ValueError(f"{where}: source must be one of {list(CAMERA_SOURCES)}, got {self.source!r}")
        size = _ints(self.size, 2)
        if size is None or min(size) < 1:
            raise ValueError(f"{where}: size must be two positive integers (H, W), got {self.size}")
        object.__setattr__(self, "size", size)
        for name in ("stale_after", "startup_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{where}: {name} must be a number of seconds > 0, got {value!r}")
        if self.source == "server":
            defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                        for f in dataclasses.fields(self)}
            local = [f for f in LOCAL_ONLY if getattr(self, f) != defaults[f]]
            if local:
                raise ValueError(f"{where}: {', '.join(local)} only apply to local cameras (source 'opencv' or "
                                 f"'realsense'); the robot server serves {self.name!r} at `size` as it is")
            return
        self._check_local(where)

    def _check_local(self, where: str) -> None:
        if isinstance(self.options, Mapping):
            fields = sorted(set(self.options) & {f.name for f in dataclasses.fields(self)})
            if fields:
                raise ValueError(f"{where}: options.{fields[0]}: {fields[0]} is a camera field, not a device setting; "
                                 f"write it beside `source`")
        if self.source == "opencv":
            device = self.device
            if isinstance(device, str) and device.isdigit():
                device = int(device)
            if isinstance(device, bool) or not (isinstance(device, int) and device >= 0
                                                or isinstance(device, str) and device):
                raise ValueError(f"{where}: device must be a device index >= 0, a /dev/video path, a video file or "
                                 f"a stream URL, got {self.device!r}")
            object.__setattr__(self, "device", device)
            if self.serial is not None:
                raise ValueError(f"{where}: serial is for realsense cameras; an opencv camera is chosen by `device`")
        else:
            if not isinstance(self.serial, str) or not self.serial:
                hint = " (quote it in YAML, serials may start with 0)" if isinstance(self.serial, int) else ""
                raise ValueError(f"{where}: serial must be the RealSense serial number as a string{hint}, "
                                 f"got {self.serial!r}")
            if self.device is not None:
                raise ValueError(f"{where}: device is for opencv cameras; a realsense camera is chosen by `serial`")
            if self.loop:
                raise ValueError(f"{where}: loop is for opencv video files, not a realsense camera")
        if self.capture_size is not None:
            capture = _ints(self.capture_size, 2)
            if capture is None or min(capture) < 1:
                raise ValueError(f"{where}: capture_size must be two positive integers (H, W), got {self.capture_size}")
            object.__setattr__(self, "capture_size", capture)
        if self.crop is not None:
            crop = _ints(self.crop, 4)
            if crop is None or not (0 <= crop[0] < crop[2] and 0 <= crop[1] < crop[3]):
                raise ValueError(f"{where}: crop must be (x0, y0, x1, y1) pixels with 0 <= x0 < x1 and 0 <= y0 < y1, "
                                 f"got {self.crop}")
            object.__setattr__(self, "crop", crop)
            if self.capture_size is not None:
                check_crop(self.name, crop, self.capture_size)
        if self.fps is not None and (isinstance(self.fps, bool) or not isinstance(self.fps, (int, float))
                                     or not self.fps > 0):
            raise ValueError(f"{where}: fps must be > 0 frames/s, got {self.fps!r}")
        if not isinstance(self.loop, bool):
            raise ValueError(f"{where}: loop must be true or false, got {self.loop!r}")
        if not isinstance(self.options, Mapping):
            raise ValueError(f"{where}: options must map device setting names to numbers, got {self.options!r}")
        for key, value in self.options.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}: options must map device setting names to numbers, got {key!r}: {value!r}")

    @property
    def is_local(self) -> bool:
        """Read in the env's process (opencv, realsense), not served by the robot server."""
        return self.source != "server"


def check_crop(name: str, crop: tuple[int, int, int, int], frame_size: tuple[int, int]) -> None:
    """A crop box must lie inside the (H, W) frame it cuts: checked from the config and again at open."""
    h, w = frame_size
    if crop[2] > w or crop[3] > h:
        raise ValueError(f"camera {name!r}: crop {tuple(crop)} (x0, y0, x1, y1) is outside the {w}x{h} (W x H) "
                         "captured image")



@dataclass(frozen=True)
class MotionLimits:
    """Enforced by the robot server on every streamed target (velocity limits) and on its silence (watchdog)."""

    max_linear_speed: float = 1.0  # m/s the streamed target may move (sustained)
    max_angular_speed: float = 3.0  # rad/s
    burst_time: float = 0.2  # s of unused speed budget a target jump may spend at once
    watchdog_timeout: float = 0.5  # s (wall clock) without a command before the arm holds its pose
    move_speed: float = 0.15  # m/s of blocking moves (resets)
    move_angular_speed: float = 0.6  # rad/s of blocking moves

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"MotionLimits.{f.name} must be > 0, got {getattr(self, f.name)}")


@dataclass(frozen=True)
class StationConfig:
    """Everything station-specific about a real env and its robot server (see the module docstring)."""

    reset_pose: Pose
    safety_box: SafetyBox
    compliance: Compliance
    target_pose: Pose | None = None  # the task's goal pose, for tasks that have one (PegInsert: peg inserted)
    reset_lift: float = 0.0  # m the arm first moves straight up at reset (out of a slot before it turns)
    nominal_quat: tuple[float, float, float, float] = tuple(DOWN_QUAT.tolist())  # the safety box's rotation reference
    cameras: tuple[CameraConfig, ...] = (CameraConfig("front"), CameraConfig("wrist"))
    robot_url: str = DEFAULT_URL
    control_hz: float = 10.0
    request_timeout: float = 1.0  # s: any request, and the time to notice a dead server
    limits: MotionLimits = field(default_factory=MotionLimits)

    def __post_init__(self) -> None:
        if not self.control_hz > 0:
            raise ValueError(f"control_hz must be > 0, got {self.control_hz}")
        if not self.reset_lift >= 0:
            raise ValueError(f"reset_lift must be >= 0 m, got {self.reset_lift}")
        if not self.request_timeout > 0:
            raise ValueError(f"request_timeout must be > 0 s, got {self.request_timeout}")
        if not self.safety_box.contains(np.asarray(self.reset_pose.position)):
            raise ValueError(f"reset_pose {self.reset_pose.position} is outside the safety box {self.safety_box}")
        if len(self.nominal_quat) != 4 or abs(np.linalg.norm(self.nominal_quat) - 1) > 1e-3:
            raise ValueError(f"nominal_quat must be a unit quaternion (w, x, y, z), got {self.nominal_quat}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")


# --- building from plain data -------------------------------------------------------------------------------
def _pose(value: Any, where: str) -> Pose:
    if isinstance(value, Pose):
        return value
    if isinstance(value, Mapping):
        return _build(Pose, value, where)
    try:
        flat = [float(v) for v in value]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: expected {{position, quat}} or 7 numbers x y z qw qx qy qz, got {value!r}") from err
    if len(flat) != 7:
        raise ValueError(f"{where}: expected 7 numbers x y z qw qx qy qz, got {len(flat)}: {value!r}")
    return Pose(tuple(flat[:3]), tuple(flat[3:]))


def _cameras(value: Any, where: str) -> tuple[CameraConfig, ...]:
    if isinstance(value, Mapping):  # {name: {source: ...}} form
        value = [{"name": name, **(opts or {})} for name, opts in value.items()]
    return tuple(c if isinstance(c, CameraConfig) else _build(CameraConfig, c, f"{where}[{i}]") for i, c in enumerate(value))


_NESTED = {
    "reset_pose": _pose,
    "target_pose": lambda v, w: None if v is None else _pose(v, w),
    "safety_box": lambda v, w: v if isinstance(v, SafetyBox) else _build(SafetyBox, v, w),
    "compliance": lambda v, w: v if isinstance(v, Compliance) else _build(Compliance, v, w),
    "limits": lambda v, w: v if isinstance(v, MotionLimits) else _build(MotionLimits, v, w),
    "cameras": _cameras,
}


def _build(cls: type, data: Any, where: str):
    """Instantiate a frozen dataclass from a mapping: unknown keys and bad values fail naming `where.key`."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        if cls is StationConfig and key in _NESTED:
            kwargs[key] = _NESTED[key](value, f"{where}.{key}")
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from err


def read_station_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a .yaml/.yml/.json station file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"station config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as err:
            raise ImportError('YAML station files need pyyaml: pip install "serl-torch[real]"') from err
        data = yaml.safe_load(text) or {}
    else:
        raise ValueError(f"station config {path} must end in .yaml, .yml or .json")
    if not isinstance(data, Mapping):
        raise ValueError(f"station config {path} must hold a mapping at top level, got {type(data).__name__}")
    return dict(data)


def station_config(
    defaults: Mapping[str, Any], source: str | Path | Mapping[str, Any] | StationConfig | None = None, **overrides: Any
) -> StationConfig:
    """Defaults <- file or mapping (`source`) <- keyword overrides; None-valued overrides are ignored."""
    if isinstance(source, StationConfig):
        base: dict[str, Any] = {f.name: getattr(source, f.name) for f in dataclasses.fields(StationConfig)}
        where = "station"
    elif isinstance(source, (str, Path)):
        base, where = {**defaults, **read_station_file(source)}, str(source)
    else:
        base, where = {**defaults, **(source or {})}, "station"
    base.update({k: v for k, v in overrides.items() if v is not None})
    return _build(StationConfig, base, where)

"""Env-side cameras: OpenCV on a real video file, RealSense through a stand-in `pyrealsense2` module, the station
config's camera fields, and a real env mixing a video-file camera with the twin's served camera."""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
from fake_realsense import FakeDevice
from fake_realsense import module as fake_pyrealsense2
from real_server import ServerProcess

import serl_envs  # noqa: F401
from serl_envs.real.cameras import CameraError, OpenCVCamera, RealSenseCamera, open_camera, open_cameras
from serl_envs.real.client import RobotConnectionError
from serl_envs.real.config import CameraConfig, station_config
from serl_envs.real.station import station_defaults

H, W = 120, 160  # the test video's frames
UNREACHABLE = "http://127.0.0.1:9"
PATIENCE = 30.0  # s a poll waits for the reader thread before the test gives up (a guard, not a measurement)


def pattern(index: int, h: int = H, w: int = W) -> np.ndarray:
    """RGB frame `index`: red = column, green = row, blue = 8 * index, so every pixel says where and when it is."""
    frame = np.empty((h, w, 3), np.uint8)
    frame[..., 0] = np.arange(w)[None, :]
    frame[..., 1] = np.arange(h)[:, None]
    frame[..., 2] = 8 * index
    return frame


def write_video(path: Path, n_frames: int, fps: float = 20.0) -> Path:
    """A lossless (FFV1) video of `pattern(0..n_frames-1)`, written with OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(cv2.cvtColor(pattern(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi", 30)


def opencv(video: Path, **fields) -> CameraConfig:
    return CameraConfig("front", "opencv", device=str(video), **fields)


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def camera_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"camera-{name}" and t.is_alive()]


# --- OpenCV on a video file ------------------------------------------------------------------------------------
def test_a_crop_of_a_video_file_comes_back_pixel_for_pixel(video):
    with OpenCVCamera(opencv(video, crop=(40, 20, 104, 84), size=(64, 64), stale_after=30.0)) as camera:
        image = camera.read()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], np.broadcast_to(np.arange(40, 104)[None, :], (64, 64)))  # columns
    np.testing.assert_array_equal(image[..., 1], np.broadcast_to(np.arange(20, 84)[:, None], (64, 64)))  # rows


def test_crop_then_resize_to_the_configured_size(video):
    with OpenCVCamera(opencv(video, crop=(40, 20, 104, 84), size=(32, 32), stale_after=30.0)) as camera:
        image = camera.read()
    assert image.shape == (32, 32, 3)
    # each output pixel is the mean of a 2x2 block of the crop
    expected = pattern(0)[20:84, 40:104].reshape(32, 2, 32, 2, 3).astype(float).mean(axis=(1, 3))
    np.testing.assert_allclose(image[..., :2], expected[..., :2], atol=1)


def test_the_newest_frame_wins_and_every_read_is_a_new_array(video):
    with OpenCVCamera(opencv(video, fps=1000, stale_after=30.0, size=(H, W))) as camera:
        wait_for(lambda: camera.frame_count == 30, "the reader to reach the end of the file")
        first, second = camera.read(), camera.read()
    assert first.shape == (H, W, 3)
    assert int(first[0, 0, 2]) == 8 * 29  # the last frame, not the first one grabbed
    np.testing.assert_array_equal(first, second)
    assert not np.shares_memory(first, second)
    first[...] = 0  # a caller writing into its image changes nothing the camera holds
    assert int(second[0, 0, 2]) == 8 * 29


def test_a_file_that_ends_is_a_camera_error_naming_camera_and_silence(tmp_path):
    path = write_video(tmp_path / "short.avi", 5)
    with OpenCVCamera(opencv(path, fps=1000, stale_after=0.3, size=(H, W))) as camera:
        wait_for(lambda: camera.frame_count == 5, "the reader to reach the end of the file")
        errors = []

        def raises():
            try:
                camera.read()
            except CameraError as err:
                errors.append(err)
                return "ended" in str(err)
            return False

        wait_for(raises, "the camera to go stale")
    message = str(errors[-1])
    match = re.fullmatch(rf"camera 'front' \(opencv '{re.escape(str(path))}'\) has delivered no frame for "
                         r"(\d+\.\d\d) s \(stale_after 0.3 s\); the video file ended after 5 frames", message)
    assert match, message
    assert float(match.group(1)) >= 0.3  # raised only once the silence passed stale_after


def test_a_looped_file_keeps_delivering(tmp_path):
    path = write_video(tmp_path / "short.avi", 3)
    with OpenCVCamera(opencv(path, fps=1000, loop=True, size=(H, W))) as camera:
        wait_for(lambda: camera.frame_count > 10, "the reader to loop")
        assert camera.read().shape == (H, W, 3)


def test_close_stops_the_reader_and_reads_after_close_fail(video):
    camera = OpenCVCamera(opencv(video, loop=True))
    assert camera_threads("front")
    camera.close()
    assert not camera_threads("front")
    with pytest.raises(CameraError, match=r"camera 'front' \(opencv '.*clip.avi'\) is closed"):
        camera.read()
    camera.close()  # twice is harmless


def test_a_crop_outside_the_image_is_refused_at_open(video):
    with pytest.raises(ValueError) as err:
        OpenCVCamera(opencv(video, crop=(0, 0, 200, 100)))
    assert str(err.value) == "camera 'front': crop (0, 0, 200, 100) (x0, y0, x1, y1) is outside the 160x120 (W x H) captured image"
    assert not camera_threads("front")


def test_a_missing_device_and_unknown_options_are_named(tmp_path, video):
    with pytest.raises(CameraError, match=r"camera 'front': OpenCV cannot open device '.*nope.avi'; no such file"):
        OpenCVCamera(opencv(tmp_path / "nope.avi"))
    with pytest.raises(ValueError, match=r"camera 'front': options.shutter: OpenCV has no capture property CAP_PROP_SHUTTER"):
        OpenCVCamera(opencv(video, options={"shutter": 3}))
    with pytest.raises(ValueError, match=r"camera 'front': OpenCVCamera reads source 'opencv', the config has source 'realsense'"):
        OpenCVCamera(CameraConfig("front", "realsense", serial="1"))


# --- the station config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "camera, message",
    [
        ({"name": "front", "source": "usb"}, "source must be one of ['server', 'opencv', 'realsense'], got 'usb'"),
        ({"name": "front", "size": [-1, 64]}, "size must be two positive integers (H, W), got (-1, 64)"),
        ({"name": "front", "source": "opencv", "device": 0, "crop": [0, 0, 700, 480], "capture_size": [480, 640]},
         "camera 'front': crop (0, 0, 700, 480) (x0, y0, x1, y1) is outside the 640x480 (W x H) captured image"),
        ({"name": "front", "source": "opencv", "device": 0, "crop": [50, 0, 40, 10]},
         "crop must be (x0, y0, x1, y1) pixels with 0 <= x0 < x1 and 0 <= y0 < y1, got (50, 0, 40, 10)"),
        ({"name": "front", "source": "opencv"}, "device must be a device index >= 0, a /dev/video path"),
        ({"name": "front", "source": "opencv", "device": 0, "fps": -5}, "fps must be > 0 frames/s, got -5"),
        ({"name": "front", "source": "opencv", "device": 0, "stale_after": 0}, "stale_after must be a number of seconds > 0, got 0"),
        ({"name": "front", "source": "realsense", "serial": 17322071728},
         "serial must be the RealSense serial number as a string (quote it in YAML, serials may start with 0), got 17322071728"),
        ({"name": "front", "crop": [0, 0, 10, 10]},
         "crop only apply to local cameras (source 'opencv' or 'realsense'); the robot server serves 'front' at `size`"),
        ({"name": "front", "source": "opencv", "device": 0, "options": {"exposure": "high"}},
         "options must map device setting names to numbers, got 'exposure': 'high'"),
    ],
)
def test_bad_camera_fields_are_named(camera, message):
    source = {"cameras": [camera, {"name": "wrist"}]}
    with pytest.raises(ValueError) as err:
        station_config(station_defaults("PegInsert"), source)
    assert str(err.value).startswith("station.cameras[0]: camera 'front': ")
    assert message in str(err.value)


def test_camera_fields_from_a_mapping_and_existing_configs_stay_valid():
    config = station_config(station_defaults("PegInsert"), {"cameras": {
        "front": {"source": "opencv", "device": "2", "crop": [80, 0, 560, 480], "fps": 15},
        "wrist": {"source": "realsense", "serial": "017322071728", "options": {"exposure": 100}},
    }})
    front, wrist = config.cameras
    assert (front.device, front.crop, front.size, front.is_local) == (2, (80, 0, 560, 480), (128, 128), True)
    assert (wrist.serial, dict(wrist.options), wrist.is_local) == ("017322071728", {"exposure": 100}, True)
    default = station_config(station_defaults("PegInsert"))
    assert default.cameras == (CameraConfig("front"), CameraConfig("wrist")) and not default.cameras[0].is_local


# --- RealSense through the stand-in SDK ------------------------------------------------------------------------
@pytest.fixture
def realsense(monkeypatch):
    device = FakeDevice("017322071728")
    monkeypatch.setitem(sys.modules, "pyrealsense2", fake_pyrealsense2([FakeDevice("999"), device]))
    return device


def rs_config(**fields) -> CameraConfig:
    return CameraConfig("wrist", "realsense", serial="017322071728", **fields)


def test_realsense_streams_color_by_serial_with_options_crop_and_resize(realsense):
    realsense.push(pattern(3, 480, 640))
    with RealSenseCamera(rs_config(crop=(100, 40, 164, 104), size=(64, 64), fps=15,
                                   options={"enable_auto_exposure": 0, "exposure": 120})) as camera:
        image = camera.read()
        (kind, width, height, fmt, fps), = realsense.started_with  # one stream: depth is not enabled
        assert (kind.name, width, height, fmt.name, fps) == ("stream.color", 640, 480, "format.rgb8", 15)
        assert realsense.options == {"enable_auto_exposure": 0.0, "exposure": 120.0}
    assert realsense.stopped
    np.testing.assert_array_equal(image[..., 0], np.broadcast_to(np.arange(100, 164)[None, :], (64, 64)))
    np.testing.assert_array_equal(image[..., 1], np.broadcast_to(np.arange(40, 104)[:, None], (64, 64)))
    assert (image[..., 2] == 24).all()


def test_realsense_keeps_the_newest_frame_although_the_sdk_reuses_its_buffer(realsense):
    with RealSenseCamera(rs_config(capture_size=(240, 320), size=(240, 320), stale_after=30.0)) as camera:
        for i in range(5):
            realsense.push(pattern(i, 240, 320))
        wait_for(lambda: camera.frame_count == 5, "five frames")
        # the reader now waits for a sixth frame, and the SDK has taken the fifth frame's memory back
        np.testing.assert_array_equal(camera.read(), pattern(4, 240, 320))
        realsense.push(pattern(9, 240, 320))
        wait_for(lambda: camera.frame_count == 6, "a sixth frame")
        np.testing.assert_array_equal(camera.read(), pattern(9, 240, 320))


def test_a_realsense_that_stops_delivering_is_a_camera_error(realsense):
    with RealSenseCamera(rs_config(stale_after=0.3)) as camera:
        realsense.push(pattern(0, 480, 640))
        wait_for(lambda: camera.frame_count == 1, "the first frame")
        errors = []

        def raises_with_cause():
            try:
                camera.read()
            except CameraError as err:
                errors.append(str(err))
                return "last error" in str(err)
            return False

        wait_for(raises_with_cause, "the camera to go stale")  # the SDK blocks in wait_for_frames: no frame comes
    assert re.fullmatch(r"camera 'wrist' \(realsense 017322071728\) has delivered no frame for \d+\.\d\d s "
                        r"\(stale_after 0.3 s\); last error: Frame didn't arrive within 150", errors[-1]), errors[-1]


def test_a_realsense_that_never_delivers_fails_after_the_startup_timeout(realsense):
    with RealSenseCamera(rs_config(stale_after=0.1, startup_timeout=1.0)) as camera:
        with pytest.raises(CameraError) as err:
            camera.read()
    assert str(err.value) == ("camera 'wrist' (realsense 017322071728) delivered no frame within 1 s of opening; "
                              "last error: Frame didn't arrive within 50")


def test_a_dead_reader_thread_is_reported_with_its_cause(realsense):
    realsense.push(pattern(0, 240, 320))  # the device ignores the asked 480x640
    with RealSenseCamera(rs_config()) as camera:
        with pytest.raises(CameraError) as err:
            camera.read()
    assert str(err.value) == (
        "camera 'wrist' (realsense 017322071728): its reader thread died: CameraError: camera 'wrist' "
        "(realsense 017322071728) delivered a uint8 frame of shape (240, 320, 3), expected uint8 (480, 640, 3)"
    )
    assert isinstance(err.value.__cause__, CameraError)
    assert realsense.stopped  # the dead reader freed the device


def test_realsense_refusals_are_named(realsense):
    with pytest.raises(CameraError, match=r"camera 'wrist': no RealSense with serial 123 is connected \(connected: \['999', '017322071728'\]\)"):
        RealSenseCamera(CameraConfig("wrist", "realsense", serial="123"))
    with pytest.raises(ValueError, match=r"camera 'wrist': RealSense 017322071728 cannot stream color at capture_size \(100, 100\) \(H, W\) and fps 30: Couldn't resolve requests"):
        RealSenseCamera(rs_config(capture_size=(100, 100)))
    with pytest.raises(ValueError, match=r"camera 'wrist': options.laser_power: RealSense 017322071728 refused laser_power=150"):
        RealSenseCamera(rs_config(options={"laser_power": 150}))
    assert realsense.stopped  # a refused option stops the started pipeline again
    with pytest.raises(ValueError, match=r"camera 'wrist': options.brightnes: pyrealsense2 has no option rs.option.brightnes"):
        RealSenseCamera(rs_config(options={"brightnes": 1}))


def test_a_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # not importable, whatever is installed
    with pytest.raises(ImportError, match=re.escape('pip install "serl-torch[realsense]"')):
        open_camera(rs_config())
    with pytest.raises(ValueError, match="source 'server' is not read in the env's process"):
        open_camera(CameraConfig("front"))


def test_open_cameras_is_all_or_nothing(video, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    with pytest.raises(ImportError):
        open_cameras([opencv(video, loop=True), rs_config()])
    assert not camera_threads("front")  # the camera opened first was closed again


# --- the real env ----------------------------------------------------------------------------------------------
def test_a_local_camera_opens_before_the_robot_is_contacted(video, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    cams = [{"name": "front", "source": "opencv", "device": str(video), "loop": True},
            {"name": "wrist", "source": "realsense", "serial": "123"}]
    with pytest.raises(ImportError, match=re.escape('pip install "serl-torch[realsense]"')):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE, cameras=cams)
    assert not camera_threads("front")
    with pytest.raises(CameraError, match="OpenCV cannot open device"):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE,
                 cameras=[{"name": "front", "source": "opencv", "device": str(tmp_path / "nope.avi")}, {"name": "wrist"}])
    # the cameras opened, then the robot server is not there: they are closed again
    with pytest.raises(RobotConnectionError):
        gym.make("SerlFrankaPegInsertReal-v0", robot_url=UNREACHABLE, cameras=cams[:1] + [{"name": "wrist"}])
    assert not camera_threads("front")


def test_real_env_mixes_a_video_camera_with_the_twins_camera(video, station_file):
    server = ServerProcess("--station", str(station_file), "--speed", "5", "--image-size", "64", "64")
    try:
        crop = (40, 20, 104, 84)
        env = gym.make("SerlFrankaPegInsertReal-v0", robot_url=server.url, station=station_file, request_timeout=5.0,
                       cameras=[{"name": "front", "source": "opencv", "device": str(video), "loop": True, "crop": crop,
                                 "size": [64, 64], "stale_after": 10.0},  # staleness is not under test here
                                {"name": "wrist", "size": [64, 64]}])
        camera = env.unwrapped.robot.local_cameras["front"]
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            assert env.observation_space.contains(obs)
            assert obs["front"].shape == obs["wrist"].shape == (64, 64, 3)
            np.testing.assert_array_equal(obs["front"][..., 0], np.broadcast_to(np.arange(40, 104)[None, :], (64, 64)))
            assert obs["wrist"].std() > 1.0  # the twin's rendered wrist view
            obs, *_ = env.step(env.action_space.sample())
        assert camera_threads("front")
        env.close()
        assert not camera_threads("front")
        with pytest.raises(CameraError, match="is closed"):
            camera.read()
    finally:
        server.stop()

"""The client side of the robot server: `RobotClient` (typed HTTP calls) and `HttpRobot` (the Robot protocol).

httpx with keep-alive and a timeout on every request: a server that is gone or stuck raises
`RobotConnectionError` (a `ConnectionError`) naming the URL within `timeout` seconds, never a hang. Error answers
raise `RobotServerError` with the server's message; a fault/reflex raises its subclass `RobotFaultError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.real.cameras import Camera
from serl_envs.real.config import Pose
from serl_envs.real.pacing import DeadlinePacer, PacingStats
from serl_envs.robot import RobotState
from serl_envs.transforms import quat_conj, quat_mul, rotvec_from_quat

IMAGE_SHAPES_HEADER = "X-Image-Shapes"
MOVE_SLACK = 10.0  # wall s a blocking move may take beyond its planned duration before the client gives up


class RobotConnectionError(ConnectionError):
    """The robot server cannot be reached, or did not answer within the timeout."""


class RobotServerError(RuntimeError):
    """The robot server answered with an error status."""

    def __init__(self, message: str, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.detail, self.errors = status, detail, errors or []


class RobotFaultError(RobotServerError):
    """The arm is in a fault/reflex state; `clear_errors()` (done by every reset) recovers it."""


def _httpx():
    try:
        import httpx
    except ModuleNotFoundError as err:
        raise ImportError('the real-robot client needs httpx: pip install "serl-torch[real]"') from err
    return httpx


class RobotClient:
    """One robot server, one keep-alive connection; every method is one request."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 1.0) -> None:
        httpx = _httpx()
        self.url, self.timeout = url.rstrip("/"), timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._httpx = httpx
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None,
                timeout: float | None = None):
        timeout = self.timeout if timeout is None else timeout
        httpx = self._httpx
        try:
            response = self._http.request(method, path, json=body, params=params, timeout=timeout)
        except httpx.TimeoutException as err:
            raise RobotConnectionError(
                f"robot server {self.url} did not answer {method} {path} within {timeout:.3g} s"
            ) from err
        except httpx.TransportError as err:
            raise RobotConnectionError(
                f"robot server {self.url} is unreachable ({method} {path}: {type(err).__name__}: {err}); "
                "is `serl robot-server` running there?"
            ) from err
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {"detail": response.text}
            detail, errors = str(payload.get("detail")), payload.get("errors") or []
            message = f"{method} {self.url}{path} -> {response.status_code}: {detail}"
            raise (RobotFaultError if errors else RobotServerError)(message, response.status_code, detail, errors)
        return response

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health").json()

    def state(self) -> dict[str, Any]:
        return self.request("GET", "/state").json()

    def command(self, position, orientation, gripper: float | None = None) -> dict[str, Any]:
        body = {"position": np.asarray(position, float).tolist(), "orientation": np.asarray(orientation, float).tolist()}
        if gripper is not None:
            body["gripper"] = float(gripper)
        return self.request("POST", "/command", body).json()

    def move_pose(self, position, orientation, timeout: float | None = None) -> None:
        body = {"position": np.asarray(position, float).tolist(), "orientation": np.asarray(orientation, float).tolist()}
        self.request("POST", "/move/pose", body, timeout=timeout)

    def move_joints(self, positions, timeout: float | None = None) -> None:
        self.request("POST", "/move/joints", {"positions": np.asarray(positions, float).tolist()}, timeout=timeout)

    def gripper(self, action: str, width: float | None = None) -> None:
        self.request("POST", "/gripper", {"action": action} if width is None else {"action": action, "width": width})

    def set_compliance(self, compliance: Compliance) -> None:
        self.request("POST", "/compliance", {k: list(v) if isinstance(v, tuple) else v for k, v in vars(compliance).items()})

    def clear_errors(self) -> None:
        self.request("POST", "/clear_errors")

    def stop(self) -> None:
        self.request("POST", "/stop")

    def cameras(self, names: list[str]) -> dict[str, np.ndarray]:
        response = self.request("GET", "/cameras", params={"names": ",".join(names)})
        data, images, offset = response.content, {}, 0
        for item in response.headers[IMAGE_SHAPES_HEADER].split(";"):
            name, shape_text = item.split(":")
            shape = tuple(int(s) for s in shape_text.split("x"))
            size = int(np.prod(shape))
            images[name] = np.frombuffer(data, np.uint8, size, offset).reshape(shape).copy()
            offset += size
        return images

    def close(self) -> None:
        self._http.close()


def _to_robot_state(s: dict[str, Any]) -> RobotState:
    pose = np.asarray(s["cartesian_position"], float)
    return RobotState(
        tcp_pos=pose[:3], tcp_quat=pose[3:], tcp_twist=np.asarray(s["cartesian_velocity"], float),
        q=np.asarray(s["joint_positions"], float), dq=np.asarray(s["joint_velocities"], float),
        gripper_width=float(s["gripper_position"]), wrench=np.asarray(s["force"] + s["torque"], float),
    )


class HttpRobot:
    """The Robot protocol over a robot server, paced at the control rate by deadlines.

    `reset()` clears faults, lifts by `reset_lift`, moves to the reset pose (blocking moves) and sets the gripper;
    `wait()` sleeps to the
    next deadline (scaled by the server's `time_scale`, so a twin run faster is paced faster); `timing()` reports
    the measured period jitter. `cameras` names the images of `cameras()` in order: those in `local_cameras`
    (read in this process, `serl_envs.real.cameras`) come from there, the others from the server; `close()`
    closes both. The gripper's full width comes from the server's /health (per arm: the Panda's 80 mm, the Piper's
    70 mm); `arm` ("panda", "piper"), when given, must be the arm the server drives.
    """

    def __init__(
        self,
        client: RobotClient,
        control_hz: float,
        reset_pose: Pose,
        compliance: Compliance,
        initial_gripper: float = 0.0,
        reset_lift: float = 0.0,
        cameras: tuple[str, ...] = (),
        camera_sizes: dict[str, tuple[int, int]] | None = None,
        local_cameras: Mapping[str, Camera] | None = None,
        arm: str | None = None,
    ) -> None:
        self.client = client
        self.local_cameras = dict(local_cameras or {})
        if set(self.local_cameras) - set(cameras):
            raise ValueError(f"local cameras {sorted(set(self.local_cameras) - set(cameras))} are missing from "
                             f"cameras {list(cameras)}, which sets the order of the images")
        health = client.health()
        if arm is not None and health["arm"] != arm:
            raise ValueError(f"the robot server at {client.url} drives a {health['arm']!r} arm, this env is for a "
                             f"{arm!r} arm; start the server with --arm {arm} or make the env of its arm")
        served = health["cameras"]
        missing = [n for n in cameras if n not in served and n not in self.local_cameras]
        if missing:
            raise ValueError(f"cameras {missing} are not served by the robot server at {client.url} "
                             f"(it serves {sorted(served)}); fix `cameras` in the station config")
        for name, (h, w) in (camera_sizes or {}).items():
            if tuple(served[name][:2]) != (h, w):
                raise ValueError(f"camera {name!r}: the server renders {served[name][:2]}, the station config asks for "
                                 f"{[h, w]}; start the server with --image-size {h} {w}")
        self.time_scale = float(health["time_scale"])
        self._limits = health["limits"]
        self._max_width = float(health["max_gripper_width"])
        self._control_dt = 1.0 / control_hz
        self._reset_pose, self._initial_gripper, self._cameras = reset_pose, initial_gripper, tuple(cameras)
        self._served = [n for n in cameras if n not in self.local_cameras]
        self._reset_lift = reset_lift
        self._box_low, self._box_high = np.array(health["safety_box"]["low"]), np.array(health["safety_box"]["high"])
        self.pacer = DeadlinePacer(self._control_dt / self.time_scale)
        client.set_compliance(compliance)

    @property
    def control_dt(self) -> float:
        return self._control_dt

    @property
    def max_gripper_width(self) -> float:
        return self._max_width

    def reset(self) -> None:
        """Clear faults, lift straight up by `reset_lift` (out of a slot, before turning), go to the reset pose."""
        self.client.clear_errors()
        pose = np.asarray(self.client.state()["cartesian_position"], float)
        if self._reset_lift > 0:
            lifted = pose.copy()
            lifted[:3] = np.clip(pose[:3] + [0.0, 0.0, self._reset_lift], self._box_low, self._box_high)
            self._move(pose, lifted)
            pose = lifted
        self._move(pose, self._reset_pose.as_array())
        self.client.gripper("move", (1.0 - self._initial_gripper) * self._max_width)

    def _move(self, start: np.ndarray, goal: np.ndarray) -> None:
        """A blocking move, with a timeout from its planned duration at the server's move speeds."""
        distance = float(np.linalg.norm(goal[:3] - start[:3]))
        angle = float(np.linalg.norm(rotvec_from_quat(quat_mul(goal[3:], quat_conj(start[3:])))))
        planned = distance / self._limits["move_speed"] + angle / self._limits["move_angular_speed"]
        self.client.move_pose(goal[:3], goal[3:], timeout=planned / self.time_scale + MOVE_SLACK + self.client.timeout)

    def settle(self) -> None:
        """Nothing settles on a real robot; the control schedule starts now."""
        self.pacer.start()

    def command(self, target_pos: np.ndarray, target_quat: np.ndarray, gripper: float) -> None:
        self.client.command(target_pos, target_quat, gripper)

    def wait(self) -> None:
        self.pacer.wait()

    def state(self) -> RobotState:
        s = self.client.state()
        if s["errors"]:
            raise RobotFaultError(
                f"robot at {self.client.url} is in a fault state {s['errors']}; reset() clears it",
                409, "fault", s["errors"],
            )
        return _to_robot_state(s)

    def cameras(self) -> dict[str, np.ndarray]:
        """One image per camera, in config order: the server's renders and the local cameras' latest frames."""
        images = self.client.cameras(self._served) if self._served else {}
        images.update((name, camera.read()) for name, camera in self.local_cameras.items())
        return {name: images[name] for name in self._cameras}

    def timing(self) -> PacingStats:
        """Jitter of the control period measured by the pacer since construction (or `pacer.clear()`)."""
        return self.pacer.stats()

    def close(self) -> None:
        """Close the connection and the local cameras."""
        try:
            for camera in self.local_cameras.values():
                camera.close()
        finally:
            self.client.close()

"""The robot server: one arm (a backend) behind a small JSON-over-HTTP API (FastAPI), with server-side safety.

    serl robot-server --backend twin --task PegInsert --speed 1 [--station station.yaml] [--token T]
    python -m serl_envs.real.server --backend twin ...          (the same)

Routes (OpenAPI at /openapi.json, docs at /docs; see `api.py` for the models and the error statuses):
GET /health, GET /state, POST /command (pose target + gripper), POST /move/pose, POST /move/joints,
POST /gripper, GET|POST /compliance, POST /clear_errors, POST /stop, GET /cameras (raw uint8 images).

Every streamed target is clipped to the station's safety box and velocity limits (`safety.py`); a watchdog holds
the pose when no command arrives within `limits.watchdog_timeout` s; one motion request runs at a time (a second
one gets 409); with a token, every route (the spec included) needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from serl_envs.compliance import Compliance
from serl_envs.real import api
from serl_envs.real.backends.base import BaseRobotServer, FaultError, MotionError, as_unit_quat, as_vector
from serl_envs.real.config import StationConfig
from serl_envs.real.safety import FilteredTarget, TargetFilter, Watchdog

GRIPPER_DEADBAND = 1e-3  # m: streamed gripper widths closer than this to the last one are not re-sent
IMAGE_SHAPES_HEADER = "X-Image-Shapes"  # "front:128x128x3;wrist:128x128x3", images concatenated in this order


class BusyError(RuntimeError):
    """Another motion request (a blocking move) is running."""


class RobotService:
    """The robot behind the routes: safety filtering, the watchdog, and one motion request at a time."""

    def __init__(self, robot: BaseRobotServer, station: StationConfig) -> None:
        box = station.safety_box
        ws_low, ws_high = np.asarray(robot.limits.workspace_low), np.asarray(robot.limits.workspace_high)
        if np.any(np.asarray(box.low) < ws_low) or np.any(np.asarray(box.high) > ws_high):
            raise ValueError(f"safety box {box} reaches outside the {robot.name} workspace "
                             f"[{ws_low.tolist()}, {ws_high.tolist()}]")
        self.robot, self.station = robot, station
        self._filter = TargetFilter(box, np.asarray(station.nominal_quat), station.limits)
        self._motion = threading.Lock()
        self._reanchor = True  # the next command starts the filter from the measured pose
        self._gripper_width: float | None = None
        self.holding = True
        self._target: tuple[list[float], list[float]] = ([0.0] * 3, [1.0, 0.0, 0.0, 0.0])
        self._watchdog: Watchdog | None = None
        self.compliance = station.compliance  # the parameters the arm runs with

    # --- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.robot.connect()
        self.robot.set_compliance(self.station.compliance)
        self._hold_target()
        self._watchdog = Watchdog(self.station.limits.watchdog_timeout, self._on_watchdog)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        if self.robot.connected:
            self.robot.stop()
            self.robot.disconnect()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._motion.acquire(blocking=False):
            raise BusyError("a blocking move is running; wait for it or POST /stop")
        try:
            yield
        finally:
            self._motion.release()

    def _hold_target(self) -> None:
        """After anything that leaves the arm holding its pose: report that pose, restart the filter from it."""
        pose = self.robot.get_state()["cartesian_position"]
        self._target = (pose[:3].tolist(), pose[3:].tolist())
        self._reanchor = True

    def _on_watchdog(self) -> None:
        if self.robot.connected:
            self.robot.stop()
            self._hold_target()
            self.holding = True

    # --- reads ----------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        box = self.station.safety_box
        return {
            "status": "ok",
            "backend": self.robot.name,
            "arm": self.robot.arm,
            "n_joints": self.robot.n_joints,
            "time_scale": self.robot.time_scale,
            "max_gripper_width": self.robot.gripper.max_width,
            "cameras": {name: list(shape) for name, shape in self.robot.camera_shapes.items()},
            "limits": vars(self.station.limits),
            "safety_box": {k: list(getattr(box, k)) for k in ("low", "high", "rot_low", "rot_high")},
        }

    def state(self) -> dict[str, Any]:
        state = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.robot.get_state().items()}
        state["target_position"], state["target_orientation"] = self._target
        state["holding"] = self.holding
        return state

    def cameras(self, names: list[str] | None) -> dict[str, np.ndarray]:
        served = self.robot.camera_shapes
        names = list(served) if names is None else names
        unknown = [n for n in names if n not in served]
        if unknown or not names:
            raise ValueError(f"cameras {unknown or names} are not served; this server serves {sorted(served)}")
        images = self.robot.cameras()
        return {n: images[n] for n in names}

    # --- motion ---------------------------------------------------------------------------------------------
    def command(self, position: Any, orientation: Any, gripper: float | None) -> FilteredTarget:
        pos, quat = as_vector("position", position, 3), as_unit_quat("orientation", orientation)
        with self._exclusive():
            now = self.robot.clock()
            if self._reanchor:
                pose = self.robot.get_state()["cartesian_position"]
                self._filter.anchor(pose[:3], pose[3:], now)
                self._reanchor = False
            target = self._filter(pos, quat, now)
            self.robot.set_cartesian_target(target.position, target.quat)
            self._target = (target.position.tolist(), target.quat.tolist())
            if gripper is not None:
                width = (1.0 - gripper) * self.robot.gripper.max_width
                if self._gripper_width is None or abs(width - self._gripper_width) > GRIPPER_DEADBAND:
                    self.robot.gripper.move_to_position(width)
                    self._gripper_width = width
            self.holding = False
            assert self._watchdog is not None
            self._watchdog.feed()
            return target

    def move_pose(self, position: Any, orientation: Any) -> None:
        pos, quat = as_vector("position", position, 3), as_unit_quat("orientation", orientation)
        box = self.station.safety_box
        if not box.contains(pos):
            raise ValueError(f"position {pos.tolist()} is outside the safety box low {list(box.low)} high {list(box.high)}")
        self._blocking(lambda: self.robot.move_to_cartesian_pose(pos, quat))

    def move_joints(self, q: Any) -> None:
        self._blocking(lambda: self.robot.move_to_joint_positions(q))

    def _blocking(self, move) -> None:
        with self._exclusive():
            assert self._watchdog is not None
            self._watchdog.disarm()
            self.holding = False
            try:
                move()
            finally:
                self._hold_target()

    def gripper(self, action: str, width: float | None) -> None:
        with self._exclusive():
            g = self.robot.gripper
            {"open": g.open, "close": g.close}.get(action, lambda: g.move_to_position(width))()
            self._gripper_width = None  # the next streamed gripper command is sent whatever it is

    def set_compliance(self, compliance: Compliance) -> None:
        with self._exclusive():
            self.robot.set_compliance(compliance)
            self.compliance = compliance

    def clear_errors(self) -> None:
        with self._exclusive():
            self.robot.clear_errors()
            self._hold_target()

    def stop(self) -> None:
        """Never waits for the motion lock: it must be able to abort a blocking move."""
        self.robot.stop()
        if self._watchdog is not None:
            self._watchdog.disarm()
        self._hold_target()
        self.holding = True


# --- HTTP -------------------------------------------------------------------------------------------------------
class BearerToken:
    """ASGI middleware: every request needs `Authorization: Bearer <token>` (401 otherwise)."""

    def __init__(self, app, token: str) -> None:
        self.app, self._expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                response = JSONResponse(
                    {"detail": "missing or wrong bearer token: send the header Authorization: Bearer <token>"},
                    status_code=401, headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _validation_message(err: RequestValidationError) -> tuple[int, str]:
    errors = err.errors()
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        return 400, f"malformed JSON body: {bad_json[0].get('ctx', {}).get('error', bad_json[0]['msg'])}"
    parts = []
    for e in errors:
        field = ".".join(str(p) for p in e["loc"] if p not in ("body", "query")) or "body"
        parts.append(f"{field}: {e['msg']}")
    return 422, "; ".join(parts)


def _json(content: dict) -> Response:
    return Response(json.dumps(content), media_type="application/json")


ERRORS = {400: {"model": api.ErrorBody}, 401: {"model": api.ErrorBody}, 422: {"model": api.ErrorBody}}
MOTION_ERRORS = {**ERRORS, 409: {"model": api.FaultBody}}


def create_app(service: RobotService, token: str | None = None) -> FastAPI:
    """The FastAPI app; its lifespan connects the backend on startup and stops and disconnects it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        service.close()

    app = FastAPI(title="serl robot server", version="1", lifespan=lifespan,
                  description=(__doc__ or "") + (api.__doc__ or ""))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        status, message = _validation_message(err)
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, err: ValueError):
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(FaultError)
    async def _fault(request: Request, err: FaultError):
        return JSONResponse({"detail": str(err), "errors": list(err.errors)}, status_code=409)

    @app.exception_handler(MotionError)
    async def _motion(request: Request, err: MotionError):
        return JSONResponse({"detail": str(err), "errors": []}, status_code=409)

    @app.exception_handler(BusyError)
    async def _busy(request: Request, err: BusyError):
        return JSONResponse({"detail": str(err), "errors": []}, status_code=409)

    # health, state and command are the per-step routes: they run on the event loop (no thread hop), which is why
    # a backend's reads and set_cartesian_target() must return at once.
    @app.get("/health", response_model=api.HealthResponse, responses=ERRORS)
    async def health():
        return service.health()

    @app.get("/state", response_model=api.StateResponse, responses=ERRORS)
    async def state():
        return _json(service.state())  # built by the server itself: no response validation on the hot path

    @app.post("/command", response_model=api.CommandResponse, responses=MOTION_ERRORS)
    async def command(body: api.CommandRequest):
        target = service.command(body.position, body.orientation, body.gripper)
        return _json({"position": target.position.tolist(), "orientation": target.quat.tolist(), "clipped": list(target.clipped)})

    @app.post("/move/pose", response_model=api.OkResponse, responses=MOTION_ERRORS)
    def move_pose(body: api.PoseMoveRequest):
        service.move_pose(body.position, body.orientation)
        return {"ok": True}

    @app.post("/move/joints", response_model=api.OkResponse, responses=MOTION_ERRORS)
    def move_joints(body: api.JointMoveRequest):
        service.move_joints(body.positions)
        return {"ok": True}

    @app.post("/gripper", response_model=api.OkResponse, responses=MOTION_ERRORS)
    def gripper(body: api.GripperRequest):
        service.gripper(body.action, body.width)
        return {"ok": True}

    @app.get("/compliance", response_model=api.ComplianceModel, responses=ERRORS)
    def get_compliance():
        return vars(service.compliance)

    @app.post("/compliance", response_model=api.ComplianceModel, responses=MOTION_ERRORS)
    def set_compliance(body: api.ComplianceModel):
        fields = body.model_dump()
        compliance = Compliance(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        service.set_compliance(compliance)
        return vars(compliance)

    @app.post("/clear_errors", response_model=api.OkResponse, responses=MOTION_ERRORS)
    def clear_errors():
        service.clear_errors()
        return {"ok": True}

    @app.post("/stop", response_model=api.OkResponse, responses=ERRORS)
    def stop():
        service.stop()
        return {"ok": True}

    @app.get(
        "/cameras",
        responses={**ERRORS, 200: {"content": {"application/octet-stream": {}},
                                   "description": f"uint8 images, concatenated in the order of the {IMAGE_SHAPES_HEADER} header"}},
        response_class=Response,
    )
    def cameras(names: str | None = Query(None, description="comma-separated camera names; default: all served")):
        images = service.cameras(None if names is None else names.split(","))
        shapes = ";".join(f"{n}:{'x'.join(map(str, im.shape))}" for n, im in images.items())
        body = b"".join(np.ascontiguousarray(im, dtype=np.uint8).tobytes() for im in images.values())
        return Response(body, media_type="application/octet-stream", headers={IMAGE_SHAPES_HEADER: shapes})

    if token is not None:
        app.add_middleware(BearerToken, token=token)
    return app


def serve(service: RobotService, host: str, port: int, token: str | None = None, log_level: str = "warning") -> None:
    """Run the server until SIGINT/SIGTERM; the backend is connected for exactly that time."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"warning: serving the robot on {host} without --token: anyone on the network can move it",
              file=sys.stderr)
    app = create_app(service, token)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


if __name__ == "__main__":
    from serl_envs.real.cli import main_robot_server

    main_robot_server(sys.argv[1:])

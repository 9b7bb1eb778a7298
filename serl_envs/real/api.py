"""The robot server's JSON API as pydantic models: one validated state read, one command route, typed errors.

Numbers must be finite (JSON has no NaN; Python's `NaN` literal is rejected with 422), vectors have fixed
lengths, quaternions are (w, x, y, z), units SI. Error bodies are always `{"detail": "<message>"}`:

| status | when |
|---|---|
| 400 | malformed JSON; a value the arm rejects (outside the workspace or joint limits, wrong joint count, a non-unit quaternion) |
| 401 | a token is set and the request lacks `Authorization: Bearer <token>` or has a wrong one |
| 409 | the arm is in a fault state (`errors` lists them; POST /clear_errors), a blocking move is running, or a move did not arrive |
| 422 | a field is missing, has the wrong type or length, or is not finite; the message names the field |
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Finite = Annotated[float, Field(allow_inf_nan=False)]
Vec3 = Annotated[list[Finite], Field(min_length=3, max_length=3)]
Vec6 = Annotated[list[Finite], Field(min_length=6, max_length=6)]
Quat = Annotated[list[Finite], Field(min_length=4, max_length=4, description="unit quaternion w, x, y, z")]
Strict = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    detail: str


class FaultBody(BaseModel):
    detail: str
    errors: list[str] = []


class CommandRequest(BaseModel):
    """A streamed impedance target and, optionally, the gripper: 0 = open ... 1 = closed."""

    model_config = Strict
    position: Vec3
    orientation: Quat
    gripper: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None


class CommandResponse(BaseModel):
    """The target the arm now tracks, after the server's clipping; `clipped` says what was limited."""

    position: list[float]
    orientation: list[float]
    clipped: list[str]


class PoseMoveRequest(BaseModel):
    model_config = Strict
    position: Vec3
    orientation: Quat


class JointMoveRequest(BaseModel):
    model_config = Strict
    positions: Annotated[list[Finite], Field(min_length=1, max_length=16, description="rad, one per joint")]


class GripperRequest(BaseModel):
    """open, close (grasp), or move to `width` (m)."""

    model_config = Strict
    action: Literal["open", "close", "move"]
    width: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _width_for_move(self) -> GripperRequest:
        if (self.action == "move") != (self.width is not None):
            raise ValueError("width (m) is required with action 'move' and only with it")
        return self


def _bounded(high: float, low_inclusive: bool = False):
    low = {"ge": 0.0} if low_inclusive else {"gt": 0.0}
    return Annotated[float, Field(le=high, allow_inf_nan=False, **low)]


class ComplianceModel(BaseModel):
    """The Cartesian impedance parameters (`serl_envs.compliance.Compliance`), within the ranges the server accepts
    (Franka's usable ranges; SERL's configs use 2000-3000 N/m and clips of a few mm)."""

    model_config = Strict
    translational_stiffness: _bounded(5000.0)  # N/m
    translational_damping: _bounded(500.0)  # N s/m
    rotational_stiffness: _bounded(500.0)  # Nm/rad
    rotational_damping: _bounded(50.0)  # Nm s/rad
    translational_clip: Annotated[list[_bounded(0.2)], Field(min_length=3, max_length=3)]  # m
    rotational_clip: Annotated[list[_bounded(1.0)], Field(min_length=3, max_length=3)]  # rad
    nullspace_stiffness: _bounded(50.0, low_inclusive=True)  # Nm/rad


class StateResponse(BaseModel):
    """One reading of the arm, plus the server's view: the tracked target and whether the watchdog holds."""

    joint_positions: list[float]
    joint_velocities: list[float]
    cartesian_position: list[float] = Field(description="x y z qw qx qy qz")
    cartesian_velocity: list[float] = Field(description="vx vy vz wx wy wz, base frame")
    force: list[float]
    torque: list[float]
    gripper_position: float = Field(description="opening, m")
    errors: list[str]
    time: float = Field(description="robot clock, s")
    target_position: list[float]
    target_orientation: list[float]
    holding: bool = Field(description="the watchdog or stop() holds the pose until the next command")


class MotionLimitsModel(BaseModel):
    max_linear_speed: float
    max_angular_speed: float
    burst_time: float
    watchdog_timeout: float
    move_speed: float
    move_angular_speed: float


class HealthResponse(BaseModel):
    status: Literal["ok"]
    backend: str
    arm: str = Field(description="the arm driven, by its sim name: panda, piper")
    n_joints: int
    time_scale: float = Field(description="robot seconds per wall second (the twin's --speed)")
    max_gripper_width: float
    cameras: dict[str, list[int]] = Field(description="served camera name -> [H, W, 3]")
    limits: MotionLimitsModel
    safety_box: dict[str, list[float]]


class OkResponse(BaseModel):
    ok: bool = True

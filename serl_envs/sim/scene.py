"""The MuJoCo world: table, lights, cameras, the impedance target, the arm and the task's declared objects.

`build_model` composes an MjSpec procedurally; `SimScene` answers a task's questions (object poses) from MjData
with ids bound once at construction (no name lookups per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from serl_envs.objects import SceneObject
from serl_envs.sim.arms.base import ARM_CONAFFINITY, ARM_CONTYPE, WORLD_CONAFFINITY, WORLD_CONTYPE, ArmInfo
from serl_envs.sim.controller import add_cartesian_impedance

TABLE_HALF = (0.5, 0.6, 0.02)
TABLE_CENTER = (0.45, 0.0, -0.02)  # table top at z = 0, robot base on the table at the origin
FRONT_CAMERA_EYE = (1.25, 0.0, 0.55)
FRONT_CAMERA_TARGET = (0.45, 0.0, 0.05)
TARGET_BODY, TARGET_SITE = "target", "target_site"
FT_FORCE, FT_TORQUE = "ft_force", "ft_torque"


@dataclass(frozen=True)
class RenderSettings:
    """Offscreen render quality. `fast` (no shadows, no MSAA) is ~30x faster on a software renderer."""

    fast: bool = True
    max_size: int = 640  # offscreen buffer edge, the largest image that can be rendered


@dataclass(frozen=True)
class BuiltScene:
    model: mujoco.MjModel
    arm: ArmInfo
    impedance_actuators: tuple[str, ...]
    front_camera: str


def look_at_quat(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion of a MuJoCo camera (looks along its -z, image up is +y) at `eye` looking at `target`."""
    z = np.asarray(eye, float) - np.asarray(target, float)
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, y, z]).ravel())
    return quat


def _add_object(spec: mujoco.MjSpec, obj: SceneObject, hand: mujoco.MjsBody, tcp_offset: np.ndarray) -> None:
    if obj.mount == "hand":
        body = hand.add_body(name=obj.name, pos=list(tcp_offset + np.asarray(obj.hand_pos)), gravcomp=1.0)
        contype, conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    else:
        body = spec.worldbody.add_body(name=obj.name, mocap=obj.mount == "placed")
        if obj.mount == "free":
            body.add_freejoint(name=obj.name + "_joint")
        contype, conaffinity = WORLD_CONTYPE, WORLD_CONAFFINITY
    part_mass = obj.mass / len(obj.parts)
    for part in obj.parts:
        geom = body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(part.half_size),
            pos=list(part.pos),
            rgba=list(part.rgba),
            friction=[part.friction, 0.005, 0.0001],
            condim=4 if obj.mount == "free" else 3,
            mass=part_mass,
        )
        geom.contype, geom.conaffinity = contype, conaffinity


def build_model(
    add_arm: Callable[[mujoco.MjSpec], ArmInfo],
    objects: tuple[SceneObject, ...],
    physics_dt: float,
    render: RenderSettings,
) -> BuiltScene:
    spec = mujoco.MjSpec()
    spec.modelname = "serl_scene"
    spec.compiler.degree = False  # all angles in radians
    spec.option.timestep = physics_dt
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 5.0  # stiffer friction: grasped objects do not creep
    spec.visual.global_.offwidth = render.max_size
    spec.visual.global_.offheight = render.max_size
    spec.visual.quality.shadowsize = 0 if render.fast else 2048
    spec.visual.quality.offsamples = 0 if render.fast else 4
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]

    world = spec.worldbody
    floor = world.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75], rgba=[0.3, 0.32, 0.35, 1])
    table = world.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF), pos=list(TABLE_CENTER),
        rgba=[0.62, 0.5, 0.38, 1], friction=[1.0, 0.005, 0.0001],
    )
    for geom in (floor, table):
        geom.contype, geom.conaffinity = WORLD_CONTYPE, WORLD_CONAFFINITY
    world.add_light(pos=[0.4, -0.6, 1.6], dir=[0.2, 0.4, -1], diffuse=[0.6, 0.6, 0.6], castshadow=not render.fast)
    world.add_light(pos=[1.2, 0.8, 1.5], dir=[-0.6, -0.4, -1], diffuse=[0.3, 0.3, 0.3], castshadow=False)
    world.add_camera(name="front", pos=list(FRONT_CAMERA_EYE), quat=list(look_at_quat(FRONT_CAMERA_EYE, FRONT_CAMERA_TARGET)), fovy=45)

    arm = add_arm(spec)
    target = world.add_body(name=TARGET_BODY, mocap=True)
    target.add_site(name=TARGET_SITE, size=[0.008, 0, 0], rgba=[0.1, 0.8, 0.1, 0.0])
    impedance = add_cartesian_impedance(spec, arm.tcp_site, TARGET_SITE, prefix=arm.name + "/")

    hand = spec.body(arm.hand_body)
    tcp_offset = np.asarray(spec.site(arm.tcp_site).pos, dtype=float)
    for obj in objects:
        _add_object(spec, obj, hand, tcp_offset)

    spec.add_sensor(name=FT_FORCE, type=mujoco.mjtSensor.mjSENS_FORCE, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=arm.flange_site)
    spec.add_sensor(name=FT_TORQUE, type=mujoco.mjtSensor.mjSENS_TORQUE, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=arm.flange_site)
    return BuiltScene(model=spec.compile(), arm=arm, impedance_actuators=impedance, front_camera="front")


class SimScene:
    """Object poses from MjData, with ids and qpos addresses bound once."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, objects: tuple[SceneObject, ...]) -> None:
        self._model, self._data = model, data
        self._mount = {o.name: o.mount for o in objects}
        self._body = {o.name: model.body(o.name).id for o in objects}
        self._qpos_adr = {
            o.name: model.jnt_qposadr[model.joint(o.name + "_joint").id] for o in objects if o.mount == "free"
        }
        self._dof_adr = {o.name: model.jnt_dofadr[model.joint(o.name + "_joint").id] for o in objects if o.mount == "free"}
        self._mocap = {o.name: model.body_mocapid[self._body[o.name]] for o in objects if o.mount == "placed"}

    def _check(self, name: str) -> str:
        if name not in self._mount:
            raise KeyError(f"unknown scene object {name!r}; declared objects: {sorted(self._mount)}")
        return self._mount[name]

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        mount = self._check(name)
        if mount == "free":
            adr = self._qpos_adr[name]
            return self._data.qpos[adr : adr + 3].copy(), self._data.qpos[adr + 3 : adr + 7].copy()
        if mount == "placed":
            mid = self._mocap[name]
            return self._data.mocap_pos[mid].copy(), self._data.mocap_quat[mid].copy()
        bid = self._body[name]
        return self._data.xpos[bid].copy(), self._data.xquat[bid].copy()

    def place(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        mount = self._check(name)
        if mount == "free":
            adr, dof = self._qpos_adr[name], self._dof_adr[name]
            self._data.qpos[adr : adr + 3] = pos
            self._data.qpos[adr + 3 : adr + 7] = quat
            self._data.qvel[dof : dof + 6] = 0.0
        elif mount == "placed":
            mid = self._mocap[name]
            self._data.mocap_pos[mid] = pos
            self._data.mocap_quat[mid] = quat
        else:
            raise ValueError(f"object {name!r} is held in the hand and cannot be placed")

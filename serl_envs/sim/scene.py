"""The MuJoCo world: table, lights, cameras, the impedance target, the arm and the task's declared objects.

`build_model` composes an MjSpec procedurally; `SimScene` answers a task's questions (object poses) from MjData
with ids bound once at construction (no name lookups per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from serl_envs.objects import Cable, Declared, SceneObject
from serl_envs.sim.arms.base import ARM_CONAFFINITY, ARM_CONTYPE, WORLD_CONAFFINITY, WORLD_CONTYPE, ArmInfo
from serl_envs.sim.controller import add_cartesian_impedance

TABLE_HALF = (0.5, 0.6, 0.02)
TABLE_CENTER = (0.45, 0.0, -0.02)  # table top at z = 0, robot base on the table at the origin
FRONT_CAMERA_EYE = (1.25, 0.0, 0.55)
FRONT_CAMERA_TARGET = (0.45, 0.0, 0.05)
TARGET_BODY, TARGET_SITE = "target", "target_site"
# A cable touches the world and the arm but not itself (its segments overlap at the joints): world contype,
# arm affinity.
CABLE_CONTYPE, CABLE_CONAFFINITY = WORLD_CONTYPE, ARM_CONTYPE
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
    elif obj.mount == "jointed":
        parent = spec.body(obj.parent)
        if parent is None:
            raise ValueError(f"object {obj.name!r}: parent {obj.parent!r} must be declared before it")
        body = parent.add_body(name=obj.name, pos=list(obj.offset))
        j = obj.joint
        body.add_joint(
            name=obj.name + "_joint",
            type=mujoco.mjtJoint.mjJNT_SLIDE if j.kind == "slide" else mujoco.mjtJoint.mjJNT_HINGE,
            axis=list(j.axis),
            range=list(j.range),
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=j.damping,
            frictionloss=j.frictionloss,
            armature=0.01,
        )
        contype, conaffinity = WORLD_CONTYPE, WORLD_CONAFFINITY
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
            quat=list(part.quat),
            rgba=list(part.rgba),
            friction=[part.friction, 0.005, 0.0001],
            condim=4 if obj.mount in ("free", "jointed") else 3,
            mass=part_mass,
        )
        geom.contype, geom.conaffinity = contype, conaffinity


def _add_cable(spec: mujoco.MjSpec, cable: Cable) -> None:
    """Chain of capsules from the parent, straight along its +x; two spring hinges (bend) per joint."""
    parent = spec.body(cable.parent)
    if parent is None:
        raise ValueError(f"cable {cable.name!r}: parent {cable.parent!r} must be declared before it")
    seg = cable.segment_length
    body = parent
    for i in range(cable.segments):
        body = body.add_body(name=f"{cable.name}/{i}", pos=list(cable.offset) if i == 0 else [seg, 0.0, 0.0])
        for axis in ("y", "z"):
            body.add_joint(
                name=f"{cable.name}/{i}_{axis}",
                type=mujoco.mjtJoint.mjJNT_HINGE,
                axis=[0.0, 1.0, 0.0] if axis == "y" else [0.0, 0.0, 1.0],
                stiffness=cable.stiffness,
                damping=cable.damping,
                armature=1e-5,
            )
        geom = body.add_geom(
            name=f"{cable.name}/{i}",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0.0, 0.0, 0.0, seg, 0.0, 0.0],
            size=[cable.radius, 0.0, 0.0],
            rgba=list(cable.rgba),
            friction=[cable.friction, 0.005, 0.0001],
            condim=1 if cable.friction == 0 else 3,
            priority=1,  # the cable's friction (and condim) wins in all its contacts
            mass=cable.mass / cable.segments,
        )
        geom.contype, geom.conaffinity = CABLE_CONTYPE, CABLE_CONAFFINITY
    if cable.plug is not None:
        plug = body.add_geom(
            name=f"{cable.name}/plug",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(cable.plug),
            pos=[seg + cable.plug[0] - cable.radius, 0.0, 0.0],
            rgba=list(cable.plug_rgba),
            friction=[1.0, 0.005, 0.0001],  # a plug grips like any part, whatever the cable's friction
            condim=4,
            mass=cable.plug_mass,
        )
        plug.contype, plug.conaffinity = CABLE_CONTYPE, CABLE_CONAFFINITY


def build_model(
    add_arm: Callable[[mujoco.MjSpec], ArmInfo],
    objects: tuple[Declared, ...],
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
        if isinstance(obj, Cable):
            _add_cable(spec, obj)
        else:
            _add_object(spec, obj, hand, tcp_offset)

    spec.add_sensor(name=FT_FORCE, type=mujoco.mjtSensor.mjSENS_FORCE, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=arm.flange_site)
    spec.add_sensor(name=FT_TORQUE, type=mujoco.mjtSensor.mjSENS_TORQUE, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=arm.flange_site)
    return BuiltScene(model=spec.compile(), arm=arm, impedance_actuators=impedance, front_camera="front")


class SimScene:
    """Object poses from MjData, with ids and qpos addresses bound once."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, objects: tuple[Declared, ...]) -> None:
        self._model, self._data = model, data
        cables = [o for o in objects if isinstance(o, Cable)]
        objects = tuple(o for o in objects if not isinstance(o, Cable))
        self._mount = {o.name: o.mount for o in objects}
        self._body = {o.name: model.body(o.name).id for o in objects}
        self._qpos_adr = {
            o.name: model.jnt_qposadr[model.joint(o.name + "_joint").id] for o in objects if o.mount == "free"
        }
        self._dof_adr = {o.name: model.jnt_dofadr[model.joint(o.name + "_joint").id] for o in objects if o.mount == "free"}
        self._mocap = {o.name: model.body_mocapid[self._body[o.name]] for o in objects if o.mount == "placed"}
        self._joint_qpos = {
            o.name: model.jnt_qposadr[model.joint(o.name + "_joint").id] for o in objects if o.mount == "jointed"
        }
        self._cable_geoms = {
            c.name: np.array([model.geom(f"{c.name}/{i}").id for i in range(c.segments)] + (
                [model.geom(f"{c.name}/plug").id] if c.plug is not None else []))
            for c in cables
        }

    def _check(self, name: str) -> str:
        if name in self._cable_geoms:
            raise KeyError(f"{name!r} is a cable: read it with cable_points({name!r})")
        if name not in self._mount:
            raise KeyError(f"unknown scene object {name!r}; declared objects: {sorted([*self._mount, *self._cable_geoms])}")
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
            where = "is held in the hand" if mount == "hand" else "moves with its parent"
            raise ValueError(f"object {name!r} {where} and cannot be placed")

    def cable_points(self, name: str) -> np.ndarray:
        if name not in self._cable_geoms:
            raise KeyError(f"{name!r} is not a declared cable; cables: {sorted(self._cable_geoms)}")
        return self._data.geom_xpos[self._cable_geoms[name]].copy()

    def joint_position(self, name: str) -> float:
        if self._check(name) != "jointed":
            raise ValueError(f"object {name!r} has no joint (mount {self._mount[name]!r}); only 'jointed' objects do")
        return float(self._data.qpos[self._joint_qpos[name]])

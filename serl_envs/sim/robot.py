"""SimRobot: the Robot protocol on an in-process MuJoCo model.

The Cartesian impedance law runs inside MuJoCo at every physics substep (see `controller.py`); Python only sets
the target once per control period, refreshes the nullspace posture torque and reads the state. This keeps an env
step close to the cost of its bare physics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.objects import Declared
from serl_envs.robot import RobotState
from serl_envs.sim.arms.base import ArmInfo
from serl_envs.sim.controller import NullspacePosture, apply_compliance
from serl_envs.sim.render import LazyRenderer
from serl_envs.sim.scene import FT_FORCE, FT_TORQUE, TARGET_BODY, RenderSettings, SimScene, build_model


@dataclass(frozen=True)
class SimConfig:
    """Timing and rendering of a simulated robot."""

    control_dt: float = 0.05  # s per env step (20 Hz)
    physics_dt: float = 0.002  # s per MuJoCo step
    image_size: tuple[int, int] = (128, 128)  # (H, W) of camera observations
    render_size: tuple[int, int] = (480, 480)  # (H, W) of env.render() frames and videos
    cameras: tuple[str, ...] = ()  # observation cameras: "front" and/or "wrist"
    render: RenderSettings = field(default_factory=RenderSettings)
    settle_time: float = 0.1  # s of physics after each reset, so objects rest on the table

    @property
    def n_substeps(self) -> int:
        n = round(self.control_dt / self.physics_dt)
        if n < 1 or abs(n * self.physics_dt - self.control_dt) > 1e-9:
            raise ValueError(
                f"control_dt {self.control_dt} must be a positive multiple of physics_dt {self.physics_dt}"
            )
        return n


def contiguous_index(ids: np.ndarray) -> slice | np.ndarray:
    """`ids` as a slice where they are consecutive: slicing makes a view (or with .copy() one contiguous copy)
    instead of the fancy-indexing gather, in the per-step state read; the values are the same."""
    ids = np.asarray(ids)
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


def solve_ik(
    model: mujoco.MjModel, site_id: int, dof_ids: np.ndarray, q0: np.ndarray, pos: np.ndarray, quat: np.ndarray,
    q_low: np.ndarray, q_high: np.ndarray, iters: int = 200, tol: float = 1e-6,
) -> np.ndarray:
    """Damped least-squares IK for a site pose, from q0. Used once per env construction for the home pose."""
    data = mujoco.MjData(model)
    q = q0.copy()
    jac = np.zeros((6, model.nv))
    err = np.zeros(6)
    site_quat, neg, dq = np.zeros(4), np.zeros(4), np.zeros(4)
    for _ in range(iters):
        data.qpos[dof_ids] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err[:3] = pos - data.site_xpos[site_id]
        mujoco.mju_mat2Quat(site_quat, data.site_xmat[site_id])
        mujoco.mju_negQuat(neg, site_quat)
        mujoco.mju_mulQuat(dq, quat, neg)
        mujoco.mju_quat2Vel(err[3:], dq, 1.0)
        if err @ err < tol**2:
            return q
        mujoco.mj_jacSite(model, data, jac[:3], jac[3:], site_id)
        j = jac[:, dof_ids]
        q = np.clip(q + j.T @ np.linalg.solve(j @ j.T + 1e-6 * np.eye(6), err), q_low, q_high)
    raise RuntimeError(f"IK did not reach pos {pos} quat {quat}: remaining error {np.linalg.norm(err):.2e}")


class SimRobot:
    """A simulated arm with a Cartesian impedance controller, its gripper, the task's objects and cameras."""

    def __init__(
        self,
        add_arm: Callable[[mujoco.MjSpec], ArmInfo],
        objects: tuple[Declared, ...],
        home_pos: np.ndarray,
        home_quat: np.ndarray,
        compliance: Compliance,
        config: SimConfig,
        initial_gripper: float = 0.0,
    ) -> None:
        self.config = config
        self._n_substeps = config.n_substeps
        built = build_model(add_arm, objects, config.physics_dt, config.render)
        self.model, self.arm = built.model, built.arm
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._joint_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.arm.joint_names])
        self._joint_dof = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.arm.joint_names])
        self._finger_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.arm.finger_joints])
        self._tcp = m.site(self.arm.tcp_site).id
        self._target_mocap = m.body_mocapid[m.body(TARGET_BODY).id]
        self._gripper_act = m.actuator(self.arm.gripper_actuator).id
        self._impedance = np.array([m.actuator(n).id for n in built.impedance_actuators])
        force, torque = m.sensor_adr[m.sensor(FT_FORCE).id], m.sensor_adr[m.sensor(FT_TORQUE).id]
        self._wrench_idx = np.r_[force : force + 3, torque : torque + 3]
        self._camera_ids = {"front": m.camera(built.front_camera).id, "wrist": m.camera(self.arm.wrist_camera).id}
        unknown = set(config.cameras) - set(self._camera_ids)
        if unknown:
            raise ValueError(f"unknown cameras {sorted(unknown)}; available: {sorted(self._camera_ids)}")
        self.scene = SimScene(m, self.data, objects)
        self.compliance = compliance
        apply_compliance(m, self._impedance, compliance)
        self.home_q = solve_ik(
            m, self._tcp, self._joint_dof, self.arm.ready_q, np.asarray(home_pos, float), np.asarray(home_quat, float),
            self.arm.q_low, self.arm.q_high,
        )
        self._nullspace = NullspacePosture(m, self._tcp, self._joint_dof, self.home_q)
        self._initial_gripper = initial_gripper
        self._renderer = LazyRenderer(m, *config.image_size)
        self._viewer = LazyRenderer(m, *config.render_size)
        # Per-step reads and writes: slices where the addresses are consecutive (they are for every arm here).
        self._q_at, self._dq_at = contiguous_index(self._joint_qpos), contiguous_index(self._joint_dof)
        self._finger_at, self._wrench_at = contiguous_index(self._finger_qpos), contiguous_index(self._wrench_idx)
        self._twist = np.zeros(6)
        self._twist_order = np.array([3, 4, 5, 0, 1, 2])  # MuJoCo's (angular, linear) -> (linear, angular)

    # --- Robot protocol -------------------------------------------------------------------------------------
    @property
    def control_dt(self) -> float:
        return self.config.control_dt

    @property
    def max_gripper_width(self) -> float:
        return self.arm.max_gripper_width

    def reset(self) -> None:
        """Home configuration at rest, target on the TCP, gripper at its initial command. Objects are placed by the
        task afterwards; call `settle()` once they are."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._joint_qpos] = self.home_q
        width = (1.0 - self._initial_gripper) * self.arm.max_gripper_width / 2
        d.qpos[self._finger_qpos] = width
        mujoco.mj_kinematics(m, d)
        d.mocap_pos[self._target_mocap] = d.site_xpos[self._tcp]
        mujoco.mju_mat2Quat(d.mocap_quat[self._target_mocap], d.site_xmat[self._tcp])
        d.ctrl[self._gripper_act] = width

    def settle(self) -> None:
        """Run physics with the home target until objects rest, then clear the clock."""
        n = round(self.config.settle_time / self.config.physics_dt)
        mujoco.mj_step(self.model, self.data, nstep=max(n, 1))
        self.data.time = 0.0

    def command(self, target_pos: np.ndarray, target_quat: np.ndarray, gripper: float) -> None:
        d = self.data
        d.mocap_pos[self._target_mocap] = target_pos
        d.mocap_quat[self._target_mocap] = target_quat
        d.ctrl[self._gripper_act] = (1.0 - gripper) * self.arm.max_gripper_width / 2
        q = d.qpos[self._q_at]
        d.qfrc_applied[self._dq_at] = self._nullspace.torque(d, q, self.compliance.nullspace_stiffness)

    def wait(self) -> None:
        mujoco.mj_step(self.model, self.data, nstep=self._n_substeps)

    def state(self) -> RobotState:
        m, d = self.model, self.data
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, self._tcp, self._twist, 0)
        qpos = d.qpos
        return RobotState(
            tcp_pos=d.site_xpos[self._tcp].copy(),
            tcp_quat=quat,
            tcp_twist=self._twist[self._twist_order],
            q=qpos[self._q_at].copy(),
            dq=d.qvel[self._dq_at].copy(),
            gripper_width=float(qpos[self._finger_at].sum()),
            wrench=d.sensordata[self._wrench_at].copy(),
        )

    def cameras(self) -> dict[str, np.ndarray]:
        return {name: self._renderer.render(self.data, self._camera_ids[name]) for name in self.config.cameras}

    def close(self) -> None:
        self._renderer.close()
        self._viewer.close()

    # --- sim extras -------------------------------------------------------------------------------------------
    def set_compliance(self, compliance: Compliance) -> None:
        """Change impedance parameters at run time, as the real robot server's parameter route does."""
        apply_compliance(self.model, self._impedance, compliance)
        self.compliance = compliance

    @property
    def renderer_created(self) -> bool:
        """Whether any OpenGL context exists (state-only use must never create one)."""
        return self._renderer.created or self._viewer.created

    def render_view(self, camera: str = "front") -> np.ndarray:
        """A frame at `render_size` for env.render() and videos."""
        return self._viewer.render(self.data, self._camera_ids[camera])

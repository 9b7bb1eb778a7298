"""Cartesian impedance control in MuJoCo, run at the physics rate by MuJoCo itself.

Six position actuators with a site transmission measure the TCP pose relative to a reference site on a mocap
"target" body (one per translational and rotational axis). Each applies F = K (target - x) - D xdot through the
TCP Jacobian transpose, i.e. tau = J^T (K e - D J qdot): the law of Franka's Cartesian impedance controller, computed
in C at every substep instead of in Python. Force ranges of +-K * clip reproduce SERL's clip of the pose error;
bodies compensate gravity (`gravcomp`), and a nullspace posture torque is refreshed at the control rate.
"""

from __future__ import annotations

import mujoco
import numpy as np

from serl_envs.compliance import Compliance

AXES = ("x", "y", "z", "rx", "ry", "rz")


def add_cartesian_impedance(spec: mujoco.MjSpec, tcp_site: str, ref_site: str, prefix: str) -> tuple[str, ...]:
    """Add the six impedance actuators; their gains are set later by `apply_compliance`."""
    names = []
    for i, axis in enumerate(AXES):
        gear = [0.0] * 6
        gear[i] = 1.0
        act = spec.add_actuator(
            name=f"{prefix}imp_{axis}", target=tcp_site, trntype=mujoco.mjtTrn.mjTRN_SITE, refsite=ref_site, gear=gear
        )
        act.set_to_position(kp=1.0, kv=1.0)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE  # ctrl stays 0: the target is the reference site
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-1.0, 1.0]
        names.append(act.name)
    return tuple(names)


def apply_compliance(model: mujoco.MjModel, actuator_ids: np.ndarray, c: Compliance) -> None:
    """Write stiffness, damping and force caps into the six impedance actuators (safe at run time)."""
    kp = np.array([c.translational_stiffness] * 3 + [c.rotational_stiffness] * 3)
    kv = np.array([c.translational_damping] * 3 + [c.rotational_damping] * 3)
    cap = kp * np.array(c.translational_clip + c.rotational_clip)
    model.actuator_gainprm[actuator_ids, 0] = kp
    model.actuator_biasprm[actuator_ids, 1] = -kp
    model.actuator_biasprm[actuator_ids, 2] = -kv
    model.actuator_forcerange[actuator_ids] = np.stack([-cap, cap], axis=1)


class NullspacePosture:
    """tau = (I - J^T J^{+T}) K_n (q_rest - q), held for one control period.

    It only moves the arm within the nullspace of the TCP task (the Panda's elbow), so the Cartesian behaviour is
    unchanged. The posture changes slowly, so refreshing it at the control rate is enough.
    """

    def __init__(self, model: mujoco.MjModel, tcp_site_id: int, dof_ids: np.ndarray, q_rest: np.ndarray) -> None:
        self._model, self._site, self._dofs, self._q_rest = model, tcp_site_id, dof_ids, q_rest
        self._jac = np.zeros((6, model.nv))
        # Buffers and views bound once: the refresh runs every env step, where small allocations add up.
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]
        n = len(dof_ids)
        # Column-major, as `jac[:, dofs]` returns it: BLAS picks its kernel by layout, and another layout changes the
        # torque in its last bits (found by a bitwise before/after rollout check).
        self._arm_jac = np.empty((6, n), order="F")
        self._gram = np.empty((6, 6))
        self._gram_diag = self._gram.reshape(-1)[::7]  # a view of its diagonal
        self._task = np.empty(6)

    def torque(self, data: mujoco.MjData, q: np.ndarray, stiffness: float) -> np.ndarray:
        if stiffness == 0.0:
            return np.zeros(len(self._dofs))
        mujoco.mj_jacSite(self._model, data, self._jacp, self._jacr, self._site)
        jac = self._jac.take(self._dofs, axis=1, out=self._arm_jac)
        # (I - J^T (J J^T + lambda I)^-1 J) e, with the 6x6 solve done by MuJoCo's Cholesky (C, no numpy overhead).
        error = stiffness * (self._q_rest - q)
        gram = np.matmul(jac, jac.T, out=self._gram)
        self._gram_diag += 1e-4
        mujoco.mju_cholFactor(gram, 0.0)
        mujoco.mju_cholSolve(self._task, gram, jac @ error)
        return error - jac.T @ self._task

"""The simulated impedance controller behaves like the real one: it tracks, and its contact force is capped."""

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.compliance import Compliance


def test_tracks_a_free_space_target():
    env = gym.make("SerlFrankaPickCube-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    goal = np.array([0.5, 0.1, 0.15])
    for _ in range(40):
        robot.command(goal, np.array([0.0, 1.0, 0.0, 0.0]), 0.0)
        robot.wait()
    state = robot.state()
    assert np.linalg.norm(state.tcp_pos - goal) < 2e-3
    assert np.linalg.norm(state.tcp_twist) < 1e-2


@pytest.mark.parametrize("clip", [0.005, 0.01])
def test_pressing_into_the_table_is_capped_at_stiffness_times_clip(clip):
    """SERL's safety mechanism: the spring force cannot exceed K * clip, however deep the target."""
    env = gym.make("SerlFrankaPickCube-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    stiffness = 2000.0
    robot.set_compliance(Compliance(translational_stiffness=stiffness, translational_damping=200.0,
                                    translational_clip=(clip, clip, clip)))
    pos = robot.state().tcp_pos.copy()
    below = np.array([pos[0], pos[1], -0.3])  # 30 cm into the table
    for _ in range(60):
        robot.command(below, np.array([0.0, 1.0, 0.0, 0.0]), 1.0)
        robot.wait()
    data, model = env.unwrapped.data, env.unwrapped.model
    table = model.geom("table").id
    normal = 0.0
    for i in range(data.ncon):
        contact = data.contact[i]
        if table in (contact.geom1, contact.geom2):
            wrench = np.zeros(6)
            import mujoco

            mujoco.mj_contactForce(model, data, i, wrench)
            normal += wrench[0]
    assert normal == pytest.approx(stiffness * clip, rel=0.1)


def test_nullspace_posture_torque_does_not_act_on_the_tcp():
    env = gym.make("SerlFrankaPegInsert-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    q = robot.state().q + np.array([0.5, -0.3, 0.5, 0.3, -0.5, 0.3, 0.5])
    torque = robot._nullspace.torque(robot.data, q, 5.0)
    jac = robot._nullspace._jac[:, robot._nullspace._dofs]
    assert np.linalg.norm(torque) > 0.1  # the elbow is pulled back towards its rest posture
    # tau = (I - J^T (J J^T)^-1 J) e: J tau = 0 up to the 1e-4 damping, so it cannot push the TCP.
    assert np.linalg.norm(jac @ torque) < 1e-2 * np.linalg.norm(torque)

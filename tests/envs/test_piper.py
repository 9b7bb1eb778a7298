"""The simulated AgileX Piper: published kinematics and limits, a gripper that grasps, damped tracking, and the
tasks' workspaces within reach of its mount (REFERENCE §E)."""

import itertools

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.sim.arms.piper import add_piper
from serl_envs.sim.robot import solve_ik
from serl_envs.task import DOWN_QUAT
from serl_envs.tasks.peg_insert import BOARD_X, BOARD_Y, INSERTED_TCP_Z, PegInsert
from serl_envs.tasks.pick_cube import CUBE_HALF, CUBE_X, CUBE_Y, LIFT_SUCCESS, PickCube
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_from_yaw, quat_mul, rotvec_from_quat

# piper_sdk's modified-DH table, dh_is_offset=0x01: a_{i-1} (mm), alpha_{i-1}, d_i (mm), theta offset (deg).
SDK_DH = [
    (0, 0, 123, 0),
    (0, -np.pi / 2, 0, -172.22),
    (285.03, 0, 0, -102.78),
    (-21.98, np.pi / 2, 250.75, 0),
    (0, -np.pi / 2, 0, 0),
    (0, np.pi / 2, 91, 0),
]
SDK_LIMITS = [(-2.6179, 2.6179), (0, 3.14), (-2.967, 0), (-1.745, 1.745), (-1.22, 1.22), (-2.09439, 2.09439)]


def bare_piper():
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    arm = add_piper(spec)
    model = spec.compile()
    return model, mujoco.MjData(model), arm


def sdk_fk(q):
    """Flange pose in the base frame, mm: T_i = RotX(alpha) TransX(a) RotZ(theta + offset) TransZ(d)."""

    def rot_x(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]])

    def rot_z(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    def trans(x=0.0, z=0.0):
        t = np.eye(4)
        t[0, 3], t[2, 3] = x, z
        return t

    pose = np.eye(4)
    for (a, alpha, d, offset), qi in zip(SDK_DH, q, strict=True):
        pose = pose @ rot_x(alpha) @ trans(x=a) @ rot_z(qi + np.deg2rad(offset)) @ trans(z=d)
    return pose


def flange_pose(model, data, arm, q):
    data.qpos[[model.joint(n).qposadr[0] for n in arm.joint_names]] = q
    mujoco.mj_kinematics(model, data)
    body = model.body("piper/link6").id
    return (data.xpos[body] - arm.base_pos) * 1000, data.xmat[body].reshape(3, 3)


def test_zero_pose_flange_is_the_published_one():
    model, data, arm = bare_piper()
    pos, rot = flange_pose(model, data, arm, np.zeros(6))
    np.testing.assert_allclose(pos, [56.128, 0.0, 213.266], atol=1e-3)
    pitch = np.deg2rad(85)  # rpy (0, 85 deg, 0)
    np.testing.assert_allclose(
        rot, [[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]], atol=2e-4
    )
    tcp = data.site_xpos[model.site(arm.tcp_site).id]
    np.testing.assert_allclose((tcp - arm.base_pos) * 1000, pos + 135.0 * rot[:, 2], atol=1e-6)


def test_forward_kinematics_follows_the_sdk_dh_table_everywhere():
    model, data, arm = bare_piper()
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(arm.q_low, arm.q_high)
        pos, rot = flange_pose(model, data, arm, q)
        expected = sdk_fk(q)
        np.testing.assert_allclose(pos, expected[:3, 3], atol=1e-6)
        np.testing.assert_allclose(rot, expected[:3, :3], atol=1e-9)


def test_joint_torque_and_gripper_limits():
    model, _, arm = bare_piper()
    for name, (low, high) in zip(arm.joint_names, SDK_LIMITS, strict=True):
        np.testing.assert_allclose(model.joint(name).range, [low, high])
    np.testing.assert_array_equal(arm.q_low, [lo for lo, _ in SDK_LIMITS])
    np.testing.assert_array_equal(arm.q_high, [hi for _, hi in SDK_LIMITS])
    assert arm.max_gripper_width == pytest.approx(0.07)  # 0-70 mm stroke
    for finger in arm.finger_joints:
        np.testing.assert_allclose(model.joint(finger).range, [0.0, 0.035])
    np.testing.assert_allclose(
        model.jnt_actfrcrange[[model.joint(n).id for n in arm.joint_names], 1], arm.torque_limit
    )


def test_motors_carry_gravity_and_the_rated_payload_at_the_edge_of_the_workspace():
    """Gravity compensation runs through the motors (as on the real arm): at the farthest grasp of PickCube the
    arm's own weight plus the rated 1.5 kg payload stays within the torque limits."""
    env = gym.make("SerlPiperPickCube-v0")
    env.reset(seed=0)
    u = env.unwrapped
    robot, model, data = u.robot, u.model, u.data
    goal = np.array([CUBE_X[1], CUBE_Y[1], CUBE_HALF])
    for _ in range(40):
        robot.command(goal, DOWN_QUAT, 0.0)
        robot.wait()
    assert np.linalg.norm(robot.state().tcp_pos - goal) < 1e-3
    dofs = [model.joint(n).dofadr[0] for n in robot.arm.joint_names]
    jac = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jac, None, model.site(robot.arm.tcp_site).id)
    payload = jac[:, dofs].T @ np.array([0.0, 0.0, -1.5 * 9.81])
    gravity = -data.qfrc_gravcomp[dofs]
    np.testing.assert_allclose(data.qfrc_actuator[dofs], -gravity, atol=0.05)  # the motors hold the arm up
    assert np.all(np.abs(gravity + payload) < robot.arm.torque_limit)
    env.close()


def test_gripper_closes_on_a_cube_and_holds_it_while_lifting():
    env = gym.make("SerlPiperPickCube-v0")
    env.reset(seed=0)
    u = env.unwrapped
    robot, scene = u.robot, u.scene
    cube = np.array([0.45, 0.05, CUBE_HALF])
    scene.place("cube", cube, np.array([1.0, 0.0, 0.0, 0.0]))

    def hold(goal, gripper, steps):
        for _ in range(steps):
            robot.command(np.asarray(goal, float), DOWN_QUAT, gripper)
            robot.wait()

    hold(cube + [0, 0, 0.08], 0.0, 30)
    hold(cube - [0, 0, 0.008], 0.0, 30)
    hold(cube - [0, 0, 0.008], 1.0, 10)
    assert robot.state().gripper_width == pytest.approx(2 * CUBE_HALF, abs=2e-3)  # stopped by the cube
    hold(cube + [0, 0, 0.15], 1.0, 40)
    lifted, _ = scene.object_pose("cube")
    state = robot.state()
    assert lifted[2] - CUBE_HALF > LIFT_SUCCESS
    assert np.linalg.norm(lifted - (state.tcp_pos + [0, 0, 0.008])) < 5e-3  # still between the fingers
    assert [w.number for w in u.data.warning] == [0] * len(u.data.warning)
    env.close()


@pytest.mark.parametrize("axis", range(3))
def test_tracks_a_step_without_overshoot_and_comes_to_rest(axis):
    env = gym.make("SerlPiperPickCube-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    start = robot.state().tcp_pos
    step = np.zeros(3)
    step[axis] = 0.05
    progress = []
    for _ in range(40):  # 2 s
        robot.command(start + step, DOWN_QUAT, 0.0)
        robot.wait()
        progress.append((robot.state().tcp_pos - start)[axis] / 0.05)
    state = robot.state()
    assert progress[9] > 0.95  # within 5% after 0.5 s
    assert max(progress) < 1.02  # well damped: no overshoot beyond 2%
    assert np.linalg.norm(state.tcp_pos - (start + step)) < 1e-3
    assert np.linalg.norm(state.tcp_twist) < 1e-3
    env.close()


def test_tracks_a_wrist_rotation():
    env = gym.make("SerlPiperPegInsert-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    start = robot.state()
    goal = quat_mul(quat_from_rotvec(np.array([0.05, -0.05, 0.5])), start.tcp_quat)
    for _ in range(40):
        robot.command(start.tcp_pos, goal, 1.0)
        robot.wait()
    state = robot.state()
    assert np.linalg.norm(rotvec_from_quat(quat_mul(goal, quat_conj(state.tcp_quat)))) < 5e-3
    assert np.linalg.norm(state.tcp_pos - start.tcp_pos) < 1e-3
    env.close()


def workspace_poses():
    """Where the tasks need the TCP: PickCube's grasp and lift over its whole cube area and its home; PegInsert's
    safety-box corners pointing down, the inserted pose over its board area at +-45 deg yaw, and its home."""
    for x, y in itertools.product(CUBE_X, CUBE_Y):
        for z in (CUBE_HALF - 0.008, CUBE_HALF + LIFT_SUCCESS + 0.01):
            yield f"PickCube cube area {x, y, z}", (x, y, z), DOWN_QUAT
    yield "PickCube home", PickCube.home_pos, DOWN_QUAT
    for corner in itertools.product(*zip(PegInsert.box.low, PegInsert.box.high, strict=True)):
        yield f"PegInsert box corner {corner}", corner, DOWN_QUAT
    for x, y, yaw in itertools.product(BOARD_X, BOARD_Y, (-np.pi / 4, np.pi / 4)):
        yield (
            f"PegInsert inserted {x, y, yaw}",
            (x, y, INSERTED_TCP_Z),
            quat_mul(quat_from_yaw(yaw), DOWN_QUAT),
        )
    yield "PegInsert home", PegInsert.home_pos, DOWN_QUAT


def test_the_mount_puts_every_task_workspace_within_reach():
    """IK (damped least squares within the joint limits, a few seeds) reaches every pose the tasks need."""
    model, _, arm = bare_piper()
    site = model.site(arm.tcp_site).id
    dofs = np.array([model.joint(n).dofadr[0] for n in arm.joint_names])
    rng = np.random.default_rng(0)
    seeds = [arm.ready_q] + [rng.uniform(arm.q_low, arm.q_high) for _ in range(20)]
    unreachable = []
    for name, pos, quat in workspace_poses():
        for seed in seeds:
            try:
                solve_ik(
                    model, site, dofs, seed, np.asarray(pos, float), quat, arm.q_low, arm.q_high, iters=300
                )
                break
            except RuntimeError:
                continue
        else:
            unreachable.append(name)
    assert unreachable == []


def test_unreachable_corners_of_the_pickcube_box_are_approached_safely():
    """PickCube's box is Panda-sized: its far corners (0.7, +-0.3) and high near corners lie beyond the Piper's
    reach pointing down. Commanding them stretches the arm to rest close by, with no MuJoCo warning."""
    env = gym.make("SerlPiperPickCube-v0")
    u = env.unwrapped
    robot = u.robot
    for corner in itertools.product(*zip(PickCube.box.low, PickCube.box.high, strict=True)):
        env.reset(seed=0)
        for _ in range(60):
            robot.command(np.array(corner), DOWN_QUAT, 0.0)
            robot.wait()
        state = robot.state()
        assert np.linalg.norm(state.tcp_pos - corner) < 0.04
        assert np.linalg.norm(state.tcp_twist) < 1e-3
        assert [w.number for w in u.data.warning] == [0] * len(u.data.warning)
    env.close()

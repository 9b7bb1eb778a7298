"""The piper backend driving the real piper_sdk over python-can's virtual bus, against a fake arm that plays the
Piper's side of the CAN protocol (piper_fake_arm.py): every frame is encoded and decoded by piper_sdk itself."""

import argparse
import struct
import sys
import threading
import time
import uuid

import can
import mujoco
import numpy as np
import pytest
from piper_fake_arm import FakePiperArm
from piper_sdk import C_PiperForwardKinematics, C_PiperInterface_V2

from serl_envs.compliance import Compliance
from serl_envs.real.backends import FaultError, MotionError, load_backend
from serl_envs.real.backends import piper as piper_backend
from serl_envs.real.backends.base import clamp_to_clip
from serl_envs.real.backends.piper import (
    PiperServer,
    end_pose_to_tcp,
    euler_to_quat,
    m_to_um,
    mdeg_to_rad,
    nm_to_mnm,
    quat_to_euler,
    rad_to_mdeg,
    tcp_to_end_pose,
    um_to_m,
)
from serl_envs.sim.arms.piper import READY_Q, add_piper
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat


def wait_until(condition, timeout: float = 5.0) -> None:
    """Poll until `condition()`; the timeout only guards against a hang, it is not what the test measures."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the timeout"
        time.sleep(0.005)


def same_rotation(q1, q2, atol=1e-6) -> bool:
    return np.linalg.norm(rotvec_from_quat(quat_mul(np.asarray(q1), quat_conj(np.asarray(q2))))) < atol


@pytest.fixture
def channel():
    name = f"piper-test-{uuid.uuid4().hex[:8]}"
    yield name
    C_PiperInterface_V2._instances.pop(name, None)


@pytest.fixture
def rig(channel):
    """A started fake arm (motors disabled) and a connected backend on a fresh virtual channel."""
    fake = FakePiperArm(channel).start()
    server = PiperServer(channel, "virtual", speed_percent=100, gripper_effort=1.5, enable_timeout=3.0,
                         move_timeout=10.0)
    server.connect()
    wait_until(lambda: fake.commands(0x151))  # connect's last frame is in: later frames are the test's own
    yield fake, server
    server.disconnect()
    fake.close()


# --- unit conversions -----------------------------------------------------------------------------------------
def test_unit_conversions_round_trip_and_give_python_ints():
    q = np.array([0.5, -1.2, 3.0e-6, np.pi, -np.pi / 2, 0.0])
    mdeg = rad_to_mdeg(q)
    assert mdeg[:2] == [28648, -68755] and mdeg[3] == 180000 and mdeg[4] == -90000
    assert all(type(v) is int for v in mdeg)  # EndPoseCtrl silently drops numpy integers
    np.testing.assert_allclose(mdeg_to_rad(mdeg), q, atol=np.radians(0.0005))
    assert m_to_um([0.0561275, -0.07, 0.0]) == [56128, -70000, 0]
    assert all(type(v) is int for v in m_to_um(np.array([0.1, 0.2])))
    np.testing.assert_array_equal(um_to_m([56128, -70000]), [0.056128, -0.07])
    assert nm_to_mnm(1.5) == 1500 and type(nm_to_mnm(np.float32(2.0))) is int


def test_euler_angles_round_trip_including_gimbal_lock():
    rng = np.random.default_rng(0)
    for angles in [*rng.uniform([-np.pi, -1.5, -np.pi], [np.pi, 1.5, np.pi], (50, 3)), (0.3, np.pi / 2, 0.0),
                   (-0.7, -np.pi / 2, 0.0)]:
        quat = euler_to_quat(*angles)
        np.testing.assert_allclose(quat_to_euler(quat), angles, atol=1e-9)
        assert same_rotation(euler_to_quat(*quat_to_euler(quat)), quat)


def test_end_pose_round_trip_within_the_sdk_resolution():
    rng = np.random.default_rng(1)
    for _ in range(20):
        pos = rng.uniform(-0.5, 0.5, 3)
        quat = quat_from_rotvec(rng.uniform(-2, 2, 3))
        ints = tcp_to_end_pose(pos, quat)
        assert all(type(v) is int for v in ints)
        pos2, quat2 = end_pose_to_tcp(ints)
        np.testing.assert_allclose(pos2, pos, atol=5e-6)  # 1 um position + 1 mdeg of rotation over the TCP offset
        assert same_rotation(quat2, quat, atol=5e-5)


def test_end_pose_feedback_is_our_sim_tcp():
    """piper_sdk's FK (the firmware's DH table and Euler convention), read through the backend's conversions,
    lands on our MuJoCo Piper's TCP site: the Euler convention and the TCP offset agree with the sim."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    arm = add_piper(spec, base_pos=(0.0, 0.0, 0.0))
    model = spec.compile()
    data = mujoco.MjData(model)
    site = model.site(arm.tcp_site).id
    fk = C_PiperForwardKinematics(0x01)
    rng = np.random.default_rng(2)
    for q in [READY_Q, np.zeros(6), *rng.uniform(arm.q_low, arm.q_high, (20, 6))]:
        data.qpos[[model.joint(n).qposadr[0] for n in arm.joint_names]] = q
        mujoco.mj_kinematics(model, data)
        sim_quat = np.zeros(4)
        mujoco.mju_mat2Quat(sim_quat, data.site_xmat[site])
        pos, quat = end_pose_to_tcp([int(round(v * 1000)) for v in fk.CalFK(list(q))[5]])
        np.testing.assert_allclose(pos, data.site_xpos[site], atol=5e-6)
        assert same_rotation(quat, sim_quat, atol=5e-5)


def test_clip_pose_clamps_each_base_axis():
    pos, quat = np.array([0.3, 0.0, 0.2]), euler_to_quat(np.pi, 0.0, 0.0)
    target_quat = quat_mul(quat_from_rotvec(np.array([0.3, -0.01, 0.0])), quat)
    p, q = clamp_to_clip(pos + [0.05, -0.004, -0.2], target_quat, pos, quat, (0.01, 0.01, 0.02), (0.1, 0.1, 0.1))
    np.testing.assert_allclose(p, pos + [0.01, -0.004, -0.02])
    np.testing.assert_allclose(rotvec_from_quat(quat_mul(q, quat_conj(quat))), [0.1, -0.01, 0.0], atol=1e-12)


# --- the backend against the fake arm -----------------------------------------------------------------------------
def test_connect_enables_the_arm(rig):
    fake, server = rig
    assert fake.enabled == [True] * 6
    assert (0x471, bytes([7, 0x02, 0, 0, 0, 0, 0, 0])) in fake.commands(0x471)
    mode = fake.commands(0x151)[-1][1]
    assert (mode[0], mode[1], mode[2]) == (0x01, 0x01, 100)  # CAN control, MOVE J, speed 100 %
    assert struct.unpack(">iHBB", fake.commands(0x159)[-1][1]) == (50000, 1500, 0x01, 0)  # gripper enabled in place
    state = server.get_state()
    assert state["errors"] == []
    np.testing.assert_allclose(state["joint_positions"], READY_Q, atol=np.radians(0.001))
    fk = fake.flange_pose()
    pos, quat = end_pose_to_tcp([int(round(v * 1000)) for v in fk])
    np.testing.assert_allclose(state["cartesian_position"], np.concatenate([pos, quat]))
    np.testing.assert_array_equal(state["force"], np.zeros(3))  # not measured on the Piper
    np.testing.assert_array_equal(state["torque"], np.zeros(3))
    assert state["gripper_position"] == pytest.approx(0.05)


def test_connect_fails_clearly_when_the_motors_do_not_enable(channel):
    fake = FakePiperArm(channel, enables=False).start()
    server = PiperServer(channel, "virtual", enable_timeout=0.3)
    try:
        with pytest.raises(ConnectionError, match=rf"the Piper on '{channel}' did not enable within 0.3 s"):
            server.connect()
        assert not server.connected
        assert channel not in C_PiperInterface_V2._instances
        assert len(can.interfaces.virtual.channels[channel]) == 1  # only the fake arm's bus is left open
    finally:
        fake.close()


def test_connect_fails_clearly_without_an_arm(channel):
    server = PiperServer(channel, "virtual", enable_timeout=0.2)
    with pytest.raises(ConnectionError, match=rf"no feedback from a Piper on '{channel}' within 0.2 s"):
        server.connect()
    assert channel not in can.interfaces.virtual.channels  # the SDK's buses were shut down


def test_joint_move_reaches_the_target_with_exact_frames(rig):
    fake, server = rig
    fake.clear_commands()
    q = READY_Q + np.array([0.3, -0.2, 0.1, -0.25, 0.15, 0.4])
    server.move_to_joint_positions(q)
    np.testing.assert_allclose(fake.q, q, atol=np.radians(0.001))
    np.testing.assert_allclose(server.get_state()["joint_positions"], q, atol=np.radians(0.002))
    frames = fake.commands()
    ids = [f[0] for f in frames]
    assert ids[:4] == [0x151, 0x155, 0x156, 0x157]  # the mode frame precedes the joint frames
    assert frames[0][1][:3] == bytes([0x01, 0x01, 100])
    mdeg = [v for _, data in frames[1:4] for v in struct.unpack(">ii", data)]
    assert mdeg == rad_to_mdeg(q)


@pytest.mark.parametrize("driver_speeds", [True, False])
def test_joint_velocities_from_the_drivers_or_from_finite_differences(channel, driver_speeds):
    fake = FakePiperArm(channel, driver_speeds=driver_speeds, max_joint_speed=0.5).start()
    server = PiperServer(channel, "virtual", speed_percent=100, enable_timeout=3.0)
    server.connect()
    try:
        target = READY_Q + np.array([0.6, 0, 0, 0, 0, 0])
        mover = threading.Thread(target=server.move_to_joint_positions, args=(target,))
        mover.start()
        wait_until(lambda: fake.q[0] > READY_Q[0] + 0.05)
        server.get_state()
        time.sleep(0.05)  # one finite-difference span
        dq = server.get_state()["joint_velocities"]
        mover.join(timeout=10)
        assert dq[0] == pytest.approx(0.5, rel=0.1)
        np.testing.assert_allclose(dq[1:], 0.0, atol=1e-9)
        wait_until(lambda: not np.any(server.get_state()["joint_velocities"]))  # at rest: zero
    finally:
        server.disconnect()
        fake.close()


def test_cartesian_target_is_clamped_to_the_clip_and_sent_as_is(rig):
    fake, server = rig
    server.set_compliance(Compliance(translational_clip=(0.01, 0.01, 0.02), rotational_clip=(0.05, 0.05, 0.05)))
    state = server.get_state()
    pos, quat = state["cartesian_position"][:3], state["cartesian_position"][3:]
    target_quat = quat_mul(quat_from_rotvec(np.array([0.2, 0.0, -0.01])), quat)
    fake.clear_commands()
    server.set_cartesian_target(pos + [0.1, -0.004, 0.05], target_quat)
    expected_pos = pos + [0.01, -0.004, 0.02]
    expected_quat = quat_mul(quat_from_rotvec(np.array([0.05, 0.0, -0.01])), quat)
    np.testing.assert_allclose(server.target[0], expected_pos)
    assert same_rotation(server.target[1], expected_quat, atol=1e-9)
    wait_until(lambda: len(fake.commands(0x154)) == 1)
    frames = fake.commands()
    assert [f[0] for f in frames] == [0x151, 0x152, 0x153, 0x154]
    assert frames[0][1][:3] == bytes([0x01, 0x00, 100])  # CAN control, MOVE P
    sent = [v for _, data in frames[1:] for v in struct.unpack(">ii", data)]
    assert sent == list(tcp_to_end_pose(expected_pos, expected_quat))
    # the fake arm solves it (IK on our sim model) and its SDK-FK feedback comes back as the clipped pose
    wait_until(lambda: np.linalg.norm(server.get_state()["cartesian_position"][:3] - expected_pos) < 2e-5)
    assert same_rotation(server.get_state()["cartesian_position"][3:], expected_quat, atol=1e-4)


def test_blocking_cartesian_move_uses_move_l_and_is_not_clipped(rig):
    fake, server = rig
    state = server.get_state()
    pos, quat = state["cartesian_position"][:3], state["cartesian_position"][3:]
    fake.clear_commands()
    server.move_to_cartesian_pose(pos + [0.05, 0.04, 0.06], quat)
    assert fake.commands(0x151)[0][1][:2] == bytes([0x01, 0x02])
    np.testing.assert_allclose(server.get_state()["cartesian_position"][:3], pos + [0.05, 0.04, 0.06], atol=2e-5)


def test_gripper_frames(rig):
    fake, server = rig
    fake.clear_commands()
    server.gripper.move_to_position(0.03)
    server.gripper.open()
    server.gripper.close()
    wait_until(lambda: len(fake.commands(0x159)) == 3)
    decoded = [struct.unpack(">iHBB", data) for _, data in fake.commands(0x159)]
    assert decoded == [(30000, 1500, 0x01, 0), (70000, 1500, 0x01, 0), (0, 1500, 0x01, 0)]
    wait_until(lambda: server.get_state()["gripper_position"] == 0.0)


def test_bad_inputs_raise_before_any_frame_is_sent(rig):
    fake, server = rig
    fake.clear_commands()
    state = server.get_state()
    pose = state["cartesian_position"]
    cases = [
        (lambda: server.move_to_joint_positions([0.0, np.nan, -1.0, 0.0, 0.5, 0.0]), "non-finite entries at \\[1\\]"),
        (lambda: server.move_to_joint_positions([0.0, 1.0, -1.0, 0.0, 0.5]), "must have shape \\(6,\\)"),
        (lambda: server.move_to_joint_positions([0.0, 1.0, 0.5, 0.0, 0.5, 0.0]),
         "outside the joint limits at joints \\[2\\]"),
        (lambda: server.set_cartesian_target([0.2, np.inf, 0.1], pose[3:]), "position has non-finite"),
        (lambda: server.set_cartesian_target(pose[:3], [1.0, 0.2, 0.0, 0.0]), "must be a unit quaternion"),
        (lambda: server.move_to_cartesian_pose([1.5, 0.0, 0.2], pose[3:]), "outside the piper workspace"),
        (lambda: server.gripper.move_to_position(0.08), "gripper width must be in \\[0, 0.07\\] m"),
        (lambda: server.gripper.move_to_position(float("nan")), "gripper width must be in"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    server.gripper.move_to_position(0.04)  # a marker: frames arrive in order, so anything sent earlier is in
    wait_until(lambda: len(fake.commands()) >= 1)
    assert [f[0] for f in fake.commands()] == [0x159]
    np.testing.assert_array_equal(server.get_state()["joint_positions"], state["joint_positions"])


def test_arm_fault_shows_in_state_and_clear_errors_recovers(rig):
    fake, server = rig
    fake.fault(0x07)
    wait_until(lambda: server.get_state()["errors"] != [])
    assert server.get_state()["errors"] == ["collision (arm_status 0x07)"]
    pose = server.get_state()["cartesian_position"]
    fake.clear_commands()
    with pytest.raises(FaultError, match="collision"):
        server.set_cartesian_target(pose[:3], pose[3:])
    assert fake.commands() == []
    server.clear_errors()
    assert server.get_state()["errors"] == []
    resume = fake.commands(0x150)[0][1]
    assert resume[0] == 0x02
    server.move_to_joint_positions(READY_Q + 0.1)  # the arm moves again (clear_errors put it back in CAN mode)
    np.testing.assert_allclose(fake.q, READY_Q + 0.1, atol=np.radians(0.001))


def test_unreachable_pose_fails_the_move_with_the_firmware_fault(rig):
    fake, server = rig
    down = server.get_state()["cartesian_position"][3:]
    with pytest.raises(MotionError, match="no_ik_solution"):
        server.move_to_cartesian_pose([0.0, 0.0, 0.85], down)  # inside the workspace box, beyond the arm's reach
    assert "no_ik_solution (arm_status 0x02)" in server.get_state()["errors"]
    server.clear_errors()
    assert server.get_state()["errors"] == []


def test_a_move_that_does_not_arrive_times_out_and_holds(channel):
    fake = FakePiperArm(channel, max_joint_speed=0.01).start()
    server = PiperServer(channel, "virtual", speed_percent=100, enable_timeout=3.0, move_timeout=0.2)
    server.connect()
    try:
        target = READY_Q + 0.3
        with pytest.raises(MotionError, match="joint move did not reach its target within 0.2 s"):
            server.move_to_joint_positions(target)
        wait_until(lambda: np.allclose(fake.q, fake.q_target, atol=1e-9))  # the hold frames arrived: it stopped
        assert np.max(np.abs(fake.q - target)) > 0.2
        hold = [v for _, data in fake.commands(0x155, 0x156, 0x157)[-3:] for v in struct.unpack(">ii", data)]
        assert hold != rad_to_mdeg(target)
        np.testing.assert_allclose(mdeg_to_rad(hold), fake.q, atol=np.radians(0.001))
    finally:
        server.disconnect()
        fake.close()


def test_disconnect_leaves_no_bus_or_sdk_thread_open(channel):
    fake = FakePiperArm(channel).start()
    before = set(threading.enumerate())
    server = PiperServer(channel, "virtual", enable_timeout=3.0)
    try:
        server.connect()
        assert len(can.interfaces.virtual.channels[channel]) == 3  # fake arm + the SDK's receive and send buses
        server.disconnect()
        assert len(can.interfaces.virtual.channels[channel]) == 1
        assert channel not in C_PiperInterface_V2._instances
        assert set(threading.enumerate()) - before == set()
        with pytest.raises(RuntimeError, match="not connected"):
            server.get_state()
        server.connect()  # a fresh SDK instance reconnects
        assert server.get_state()["errors"] == []
        server.disconnect()
    finally:
        fake.close()


def test_constructor_rejects_bad_options():
    for kwargs, message in [
        ({"can_interface": "pcan"}, "can_interface must be one of \\['socketcan', 'virtual', 'slcan'\\]"),
        ({"speed_percent": 0}, "speed_percent must be an integer in \\[1, 100\\], got 0"),
        ({"gripper_effort": 6.0}, "gripper_effort must be in \\[0, 5.0\\] N m, got 6.0"),
        ({"move_timeout": 0}, "move_timeout must be > 0 s"),
        ({"can_port": ""}, "can_port must be a CAN interface name"),
    ]:
        with pytest.raises(ValueError, match=message):
            PiperServer(**kwargs)


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "piper_sdk", None)
    with pytest.raises(ImportError, match='pip install "serl-torch\\[piper\\]"'):
        PiperServer("unused", "virtual").connect()


def test_backend_loads_by_name_with_its_options(channel):
    module = load_backend("piper")
    assert module is piper_backend
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    help_text = parser.format_help()
    for option in ("--can-port", "--can-interface", "--speed-percent", "--gripper-effort", "--enable-timeout",
                   "--move-timeout"):
        assert option in help_text
    args = parser.parse_args(["--can-port", channel, "--can-interface", "virtual", "--speed-percent", "55",
                              "--gripper-effort", "2.5"])
    server = module.create(args, station=None)
    assert isinstance(server, PiperServer) and not server.connected
    assert (server.can_port, server.can_interface, server.speed_percent, server.gripper_effort) == (
        channel, "virtual", 55, 2.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--can-interface", "pcan"])


def test_robot_service_streams_through_the_safety_box_and_the_clip(rig):
    """The server's safety layer and the backend's clip stack: a far target is cut to the box, then to the clip."""
    from serl_envs.real.config import MotionLimits, Pose, StationConfig
    from serl_envs.real.server import RobotService
    from serl_envs.spaces import SafetyBox

    fake, server = rig
    server.disconnect()  # the service connects it itself
    pos, quat = end_pose_to_tcp([int(round(v * 1000)) for v in fake.flange_pose()])
    station = StationConfig(
        reset_pose=Pose(tuple(pos), tuple(quat)),
        safety_box=SafetyBox(tuple(pos - 0.05), tuple(pos + 0.05), (-0.3,) * 3, (0.3,) * 3),
        compliance=Compliance(translational_clip=(0.01, 0.01, 0.01)),
        nominal_quat=tuple(quat),
        limits=MotionLimits(watchdog_timeout=30.0),
    )
    service = RobotService(server, station)
    service.start()
    try:
        fake.clear_commands()
        service.command(pos + [0.2, 0.0, -0.003], quat, gripper=1.0)
        np.testing.assert_allclose(server.target[0], pos + [0.01, 0.0, -0.003], atol=2e-6)  # feedback resolution
        wait_until(lambda: fake.commands(0x159))
        assert struct.unpack(">iHBB", fake.commands(0x159)[-1][1])[0] == 0  # gripper 1.0 = closed
    finally:
        service.close()
    assert not server.connected

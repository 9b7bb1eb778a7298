"""The franka backend over franky, with franky's Robot and Gripper answered by a simulated Panda
(`fake_franky.py`): everything above franky's boundary, franky's own CartesianImpedanceTracker and motion
objects included, is real. One test uses the real franky against 127.0.0.1 (nothing listens: FCI refused)."""

from __future__ import annotations

import argparse
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from fake_franky import HANG_IP, Hardware, fake_franky
from real_server import free_port

from serl_envs.compliance import Compliance
from serl_envs.real.backends import FaultError, MotionError, load_backend
from serl_envs.real.backends.franka import WORKSPACE, FrankaServer, clamp_to_clip, create
from serl_envs.real.cli import main_robot_server
from serl_envs.real.config import station_config
from serl_envs.real.server import RobotService, create_app
from serl_envs.real.station import station_defaults
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat

IP = "172.16.0.2"
DOWN = np.array([0.0, 1.0, 0.0, 0.0])
HOME = (0.5, 0.0, 0.3)


@pytest.fixture
def hw():
    hardware = Hardware(IP, home_pos=HOME)
    yield hardware
    hardware.close()


@pytest.fixture
def arm(hw):
    server = FrankaServer(IP, realtime="ignore", franky=fake_franky(hw))
    server.connect()
    yield server
    server.disconnect()


def sent_target(hw: Hardware) -> tuple[np.ndarray, np.ndarray]:
    """The reference franky's tracking motion holds now: what reached the SDK (position, quat w x y z)."""
    ref = hw.motion.get_reference().target
    q = ref.quaternion
    return np.asarray(ref.translation), np.array([q[3], q[0], q[1], q[2]])


def same_rotation(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> bool:
    return float(np.linalg.norm(rotvec_from_quat(quat_mul(a, quat_conj(b))))) < tol


def test_state_has_the_keys_shapes_and_units_of_the_arm(arm, hw):
    state = arm.get_state()
    shapes = {"joint_positions": (7,), "joint_velocities": (7,), "cartesian_position": (7,),
              "cartesian_velocity": (6,), "force": (3,), "torque": (3,)}
    assert set(state) == {*shapes, "gripper_position", "errors", "time"}
    for key, shape in shapes.items():
        assert state[key].shape == shape, key
    sim = hw.snapshot
    np.testing.assert_allclose(state["joint_positions"], sim.q, atol=1e-3)  # rad
    np.testing.assert_allclose(state["cartesian_position"][:3], HOME, atol=2e-3)  # m, base frame
    assert same_rotation(state["cartesian_position"][3:], DOWN, tol=2e-3)  # w x y z, not franky's x y z w
    assert np.linalg.norm(state["cartesian_position"][3:]) == pytest.approx(1.0)
    assert np.linalg.norm(state["cartesian_velocity"]) < 1e-2  # at rest, m/s and rad/s
    assert state["gripper_position"] == pytest.approx(0.08, abs=1e-3)  # m, open hand
    assert state["errors"] == []


def test_a_streamed_target_is_clamped_to_the_current_pose_plus_minus_the_clip(arm, hw):
    clip = arm.compliance.translational_clip[0]
    with hw.lock:  # freeze the robot loop: the pose the backend reads is the one the expectation uses
        pose = arm.get_state()["cartesian_position"]
        pos, quat = pose[:3], pose[3:]
        far = pos + np.array([0.3, -0.004, -0.2])
        turned = quat_mul(quat_from_rotvec(np.array([0.5, 0.0, -0.05])), quat)
        arm.set_cartesian_target(far, turned)
        sent_pos, sent_quat = sent_target(hw)
    np.testing.assert_allclose(sent_pos, pos + np.array([clip, -0.004, -clip]), rtol=0, atol=1e-12)
    expected = quat_mul(quat_from_rotvec(np.array([arm.compliance.rotational_clip[0], 0.0, -0.05])), quat)
    assert same_rotation(sent_quat, expected)
    np.testing.assert_allclose(arm.target[0], sent_pos, atol=1e-12)
    # the sim arm settles on the clamped target, not on the requested one
    hw.wait_ticks(100)
    np.testing.assert_allclose(arm.get_state()["cartesian_position"][:3], sent_pos, atol=3e-3)


def test_a_target_inside_the_clip_is_sent_unchanged(arm, hw):
    with hw.lock:
        pose = arm.get_state()["cartesian_position"]
        near = pose[:3] + np.array([0.005, -0.01, 0.0])
        turned = quat_mul(quat_from_rotvec(np.array([0.0, 0.05, 0.0])), pose[3:])
        arm.set_cartesian_target(near, turned)
        sent_pos, sent_quat = sent_target(hw)
    np.testing.assert_allclose(sent_pos, near, rtol=0, atol=1e-12)
    assert same_rotation(sent_quat, turned)


def test_clamp_to_clip_is_per_axis():
    c = Compliance(translational_clip=(0.01, 0.02, 0.03), rotational_clip=(0.1, 0.2, 0.3))
    pos, quat = clamp_to_clip(np.array([1.0, -1.0, 0.015]), quat_from_rotvec(np.array([-1.0, 0.1, 1.0])),
                              np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), c.translational_clip,
                              c.rotational_clip)
    np.testing.assert_allclose(pos, [0.01, -0.02, 0.015])
    np.testing.assert_allclose(rotvec_from_quat(quat), [-0.1, 0.1, 0.3], atol=1e-12)


def test_compliance_reaches_franky_and_the_arm(arm, hw):
    tracker = hw.motion
    gains = tracker.get_gains()  # the station's default compliance, set at connect
    np.testing.assert_allclose(np.diag(gains.stiffness), [2000.0] * 3 + [150.0] * 3)
    np.testing.assert_allclose(np.diag(gains.damping), [89.0] * 3 + [7.0] * 3)
    np.testing.assert_allclose(tracker.params.translational_error_clip, [0.02] * 3)
    soft = Compliance(translational_stiffness=800.0, translational_damping=50.0, rotational_stiffness=60.0,
                      rotational_damping=4.0, nullspace_stiffness=2.0)
    arm.set_compliance(soft)
    assert hw.motion is tracker  # gains change online, on the same tracking motion
    gains = tracker.get_gains()
    np.testing.assert_allclose(np.diag(gains.stiffness), [800.0] * 3 + [60.0] * 3)
    np.testing.assert_allclose(np.diag(gains.damping), [50.0] * 3 + [4.0] * 3)
    np.testing.assert_allclose(tracker.get_nullspace_gains().posture_stiffness, [2.0] * 7)
    hw.wait_ticks(2)
    assert hw.applied == soft  # what the simulated controller runs with
    tight = Compliance(translational_clip=(0.005, 0.01, 0.01), rotational_clip=(0.05, 0.05, 0.05))
    arm.set_compliance(tight)  # the error clip is per tracker: a new tracking motion takes over
    assert hw.motion is not tracker
    np.testing.assert_allclose(hw.motion.params.translational_error_clip, [0.005, 0.01, 0.01])
    np.testing.assert_allclose(hw.motion.params.rotational_error_clip, [0.05] * 3)
    with hw.lock:
        pos = arm.get_state()["cartesian_position"]
        arm.set_cartesian_target(pos[:3] + 1.0 * np.array([0.1, 0.1, 0.1]), pos[3:])
        np.testing.assert_allclose(sent_target(hw)[0], pos[:3] + np.array([0.005, 0.01, 0.01]), atol=1e-12)


BAD = [
    (lambda a: a.set_cartesian_target([0.5, np.nan, 0.3], DOWN), "position has non-finite entries at [1]"),
    (lambda a: a.set_cartesian_target([0.5, 0.0], DOWN), "position must have shape (3,), got shape (2,)"),
    (lambda a: a.set_cartesian_target([0.5, 0.0, 0.3], [0.0, 1.0, 0.0]),
     "orientation_quat must have shape (4,)"),
    (lambda a: a.set_cartesian_target([0.5, 0.0, 0.3], [0.0, 2.0, 0.0, 0.0]),
     "orientation_quat must be a unit quaternion (wxyz), got norm 2"),
    (lambda a: a.set_cartesian_target([1.5, 0.0, 0.3], DOWN),
     f"position [1.5, 0.0, 0.3] is outside the franka workspace [{list(WORKSPACE[0])}, "
     f"{list(WORKSPACE[1])}]"),
    (lambda a: a.move_to_cartesian_pose([0.5, 0.0, -0.2], DOWN),
     "position [0.5, 0.0, -0.2] is outside the franka"),
    (lambda a: a.move_to_joint_positions([0.0] * 6), "joint_positions must have shape (7,), got shape (6,)"),
    (lambda a: a.move_to_joint_positions([0.0, 0.0, 0.0, -2.0, 0.0, 2.0, np.inf]),
     "joint_positions has non-finite entries at [6]"),
    (lambda a: a.move_to_joint_positions([0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]),
     "joint_positions outside the joint limits at joints [3]: [0.0] not in [[-3.0718], [-0.0698]]"),
    (lambda a: a.gripper.move_to_position(0.09), "gripper width must be in [0, 0.08] m, got 0.09"),
    (lambda a: a.gripper.move_to_position(float("nan")), "gripper width must be in [0, 0.08] m, got nan"),
]


@pytest.mark.parametrize("call, expected", BAD)
def test_bad_input_raises_before_franky_sees_anything(arm, hw, call, expected):
    hw.wait_ticks(1)
    calls, motions, ref = list(hw.calls), list(hw.motion_log), sent_target(hw)
    with pytest.raises(ValueError) as err:
        call(arm)
    assert expected in str(err.value)
    assert hw.calls == calls and hw.motion_log == motions
    np.testing.assert_array_equal(sent_target(hw)[0], ref[0])
    np.testing.assert_array_equal(sent_target(hw)[1], ref[1])


def test_a_reflex_shows_in_the_state_blocks_motion_and_clear_errors_recovers(arm, hw):
    hw.inject_reflex("cartesian_reflex")
    hw.wait_ticks(2)
    errors = arm.get_state()["errors"]
    assert errors[:2] == ["cartesian_reflex", "robot_mode: Reflex"]
    assert errors[2] == ('control_exception: libfranka: Move command aborted: motion aborted by reflex! '
                         '["cartesian_reflex"] control_command_success_rate: 1.00')
    calls = list(hw.calls)
    pose = arm.get_state()["cartesian_position"]
    with pytest.raises(FaultError) as err:
        arm.set_cartesian_target(pose[:3], pose[3:])
    assert err.value.errors == tuple(errors)
    with pytest.raises(FaultError):
        arm.move_to_joint_positions(arm.get_state()["joint_positions"])
    assert hw.calls == calls  # nothing reached franky
    arm.clear_errors()
    assert hw.calls[len(calls)] == ("recover_from_errors",)
    assert arm.get_state()["errors"] == []
    assert hw.motion is not None and hw.motion.get_reference() is not None  # a tracker holds the pose again
    arm.set_cartesian_target(pose[:3] + np.array([0.0, 0.0, 0.01]), pose[3:])
    hw.wait_ticks(100)
    assert arm.get_state()["cartesian_position"][2] == pytest.approx(pose[2] + 0.01, abs=3e-3)


def test_a_communication_reflex_during_a_blocking_move_is_a_fault(arm, hw):
    q = arm.get_state()["joint_positions"]
    failure: list[BaseException] = []
    mover = threading.Thread(target=lambda: _expect(failure, lambda: arm.move_to_joint_positions(q + 0.3)))
    mover.start()
    _wait_for(lambda: hw.motion is not None and type(hw.motion).__name__ == "JointMotion")
    hw.inject_reflex("communication_constraints_violation")
    mover.join(timeout=30)
    assert isinstance(failure[0], MotionError)
    assert "communication_constraints_violation" in str(failure[0])
    assert "communication_constraints_violation" in arm.get_state()["errors"]
    arm.clear_errors()
    assert arm.get_state()["errors"] == []


def test_an_arm_faulted_before_connect_reports_it_and_recovers(hw):
    hw.inject_reflex("joint_reflex")
    hw.wait_ticks(2)
    server = FrankaServer(IP, realtime="ignore", franky=fake_franky(hw))
    server.connect()
    try:
        assert server.get_state()["errors"] == ["joint_reflex", "robot_mode: Reflex"]
        assert hw.motion is None  # no controller is started on a faulted arm
        server.clear_errors()
        assert server.get_state()["errors"] == []
        assert type(hw.motion).__name__ == "CartesianImpedanceTrackingMotion"
    finally:
        server.disconnect()


def test_blocking_moves_use_franky_motions_with_the_dynamics_factor(arm, hw):
    q = arm.get_state()["joint_positions"]
    goal = q + np.array([0.1, -0.1, 0.0, 0.1, 0.0, 0.1, -0.2])
    arm.move_to_joint_positions(goal)
    np.testing.assert_allclose(arm.get_state()["joint_positions"], goal, atol=2e-3)
    kinds = [type(m).__name__ for m in hw.motion_log]
    assert kinds[-3:] == ["TorqueStopMotion", "JointMotion", "CartesianImpedanceTrackingMotion"]
    joint = hw.motion_log[-2]
    np.testing.assert_allclose(joint.target.position, goal)
    assert joint.relative_dynamics_factor.velocity == pytest.approx(0.1)
    assert ("move", "JointMotion", False) in hw.calls  # blocking
    pose = arm.get_state()["cartesian_position"]
    target = pose[:3] + np.array([0.03, -0.02, -0.04])
    arm.move_to_cartesian_pose(target, pose[3:])
    np.testing.assert_allclose(arm.get_state()["cartesian_position"][:3], target, atol=4e-3)
    cart = hw.motion_log[-2]
    assert type(cart).__name__ == "CartesianMotion"
    assert cart.relative_dynamics_factor.velocity == pytest.approx(0.1)
    np.testing.assert_allclose(cart.target.pose.end_effector_pose.translation, target)
    assert arm.get_state()["errors"] == []


def test_stop_aborts_a_blocking_move_without_a_fault(arm, hw):
    q = arm.get_state()["joint_positions"]
    failure: list[BaseException] = []
    mover = threading.Thread(target=lambda: _expect(failure, lambda: arm.move_to_joint_positions(q + 0.5)))
    mover.start()
    _wait_for(lambda: hw.motion is not None and type(hw.motion).__name__ == "JointMotion")
    arm.stop()
    mover.join(timeout=30)
    assert str(failure[0]) == "joint move aborted by stop()"
    assert arm.get_state()["errors"] == []
    assert type(hw.motion).__name__ == "CartesianImpedanceTrackingMotion"  # holding again


def test_gripper_commands_reach_franky_in_si_units(arm, hw):
    g = arm.gripper
    g.move_to_position(0.03)
    _wait_for(lambda: abs(arm.get_state()["gripper_position"] - 0.03) < 1e-3)
    assert ("gripper.move", 0.03, 0.1) in hw.calls  # m, m/s
    g.close()
    _wait_for(lambda: ("gripper.grasp", 0.0, 0.1, 70.0, 0.005, 0.08) in hw.calls)  # m, m/s, N, m, m
    _wait_for(lambda: arm.get_state()["gripper_position"] < 1e-3)
    g.open()
    _wait_for(lambda: ("gripper.open", 0.1) in hw.calls)
    _wait_for(lambda: arm.get_state()["gripper_position"] > 0.079)
    g.move_to_position(0.0)  # a zero width closes with force, as close() does
    _wait_for(lambda: hw.calls.count(("gripper.grasp", 0.0, 0.1, 70.0, 0.005, 0.08)) == 2)


def test_connect_gives_up_on_an_address_that_never_answers(hw):
    server = FrankaServer(HANG_IP, realtime="ignore", connect_timeout=0.5, franky=fake_franky(hw))
    with pytest.raises(ConnectionError) as err:
        server.connect()
    assert str(err.value).startswith(f"the Franka at {HANG_IP} did not answer within 0.5 s")
    assert not server.connected


def test_the_realtime_check_is_enforced_by_default_with_a_hint(hw):
    server = FrankaServer(IP, franky=fake_franky(hw))
    with pytest.raises(RuntimeError) as err:
        server.connect()
    assert "Running kernel does not have realtime capabilities" in str(err.value)
    assert "--realtime ignore" in str(err.value)
    assert hw.robot_kwargs["realtime_config"].name == "Enforce"


def test_the_real_franky_fails_fast_with_a_clear_error_when_fci_refuses():
    server = FrankaServer(robot_ip="127.0.0.1")  # the installed franky; nothing listens on 127.0.0.1
    failure: list[BaseException] = []
    attempt = threading.Thread(target=lambda: _expect(failure, server.connect), daemon=True)
    attempt.start()
    attempt.join(timeout=60)
    assert not attempt.is_alive(), "connect() hung"
    assert isinstance(failure[0], ConnectionError)
    assert str(failure[0]).startswith(
        "could not connect to the Franka at 127.0.0.1: libfranka: Connection to FCI refused")


def test_without_franky_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", None)
    with pytest.raises(ImportError) as err:
        FrankaServer(IP)
    assert 'pip install "serl-torch[franka]"' in str(err.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"realtime": "sometimes"}, "realtime must be one of ('enforce', 'ignore'), got 'sometimes'"),
        ({"dynamics_factor": 0.0}, "dynamics_factor must be in (0, 1], got 0.0"),
        ({"connect_timeout": -1.0}, "connect_timeout must be > 0, got -1.0"),
        ({"grasp_force": 0.0}, "grasp force must be > 0 N, got 0.0"),
    ],
)
def test_bad_settings_are_refused(hw, kwargs, message):
    with pytest.raises(ValueError) as err:
        FrankaServer(IP, franky=fake_franky(hw), **kwargs)
    assert str(err.value) == message


def test_the_cli_lists_the_franka_options(capsys):
    with pytest.raises(SystemExit) as done:
        main_robot_server(["--backend", "franka", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--robot-ip", "--realtime {enforce,ignore}", "--dynamics-factor", "--connect-timeout",
                   "--gripper-speed", "--grasp-force", "--force-threshold", "--torque-threshold"):
        assert option in out, option
    assert "franka backend (franky)" in out and "development machines" in " ".join(out.split())


def test_create_builds_the_server_from_its_options_and_the_station():
    module = load_backend("franka")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args(["--robot-ip", "172.16.0.9", "--realtime", "ignore", "--dynamics-factor", "0.2"])
    station = station_config(station_defaults("PegInsert"))
    server = create(args, station)  # the installed franky; no connection until connect()
    assert (server.robot_ip, server.realtime, server.dynamics_factor) == ("172.16.0.9", "ignore", 0.2)
    assert server.compliance == station.compliance and not server.connected
    assert (server.gripper.speed, server.gripper.force) == (0.1, 70.0)


@pytest.fixture
def http_franka():
    """The robot server app with the franka backend (on the simulated arm), on a free 127.0.0.1 port."""
    station = station_config(station_defaults("PegInsert"))
    hardware = Hardware(IP, home_pos=station.reset_pose.position)
    robot = FrankaServer(IP, realtime="ignore", compliance=station.compliance, franky=fake_franky(hardware))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(RobotService(robot, station)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        _wait_for(lambda: server.started or not thread.is_alive())
        assert server.started, "the robot server did not start"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            yield client, hardware
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        hardware.close()


def test_the_http_server_reports_a_reflex_and_clears_it(http_franka):
    client, hardware = http_franka
    pose = client.get("/state").json()["cartesian_position"]
    body = {"position": pose[:3], "orientation": pose[3:]}
    assert client.post("/command", json=body).status_code == 200
    hardware.inject_reflex("joint_reflex")
    hardware.wait_ticks(2)
    state = client.get("/state").json()
    assert state["errors"][:2] == ["joint_reflex", "robot_mode: Reflex"]
    refused = client.post("/command", json=body)
    assert refused.status_code == 409
    assert refused.json()["errors"] == state["errors"]
    assert refused.json()["detail"].startswith("robot is in a fault state ['joint_reflex'")
    assert client.post("/clear_errors").status_code == 200
    assert client.get("/state").json()["errors"] == []
    assert client.post("/command", json=body).status_code == 200


def _expect(failure: list[BaseException], call) -> None:
    try:
        call()
    except BaseException as err:  # noqa: BLE001 - handed to the test thread
        failure.append(err)
    else:
        failure.append(AssertionError("no exception"))


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Poll a condition the simulated robot's loop makes true (a generous timeout: it runs in real time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(0.01)

"""The backend base class's input checks (on the real twin, in process), the target filter, the pacer, and the
lazy backend loader."""

from __future__ import annotations

import time

import numpy as np
import pytest

from serl_envs.compliance import Compliance
from serl_envs.real import backends
from serl_envs.real.backends.twin import TwinRobot
from serl_envs.real.config import MotionLimits, station_config
from serl_envs.real.pacing import DeadlinePacer
from serl_envs.real.safety import TargetFilter
from serl_envs.real.station import station_defaults
from serl_envs.spaces import SafetyBox

DOWN = np.array([0.0, 1.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def twin():
    robot = TwinRobot("PegInsert", station_config(station_defaults("PegInsert")), speed=5.0, force_limit=12.0)
    robot.connect()
    yield robot
    robot.disconnect()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.set_cartesian_target([0.5, 0.0], DOWN), "position must have shape (3,), got shape (2,)"),
        (lambda r: r.set_cartesian_target([0.5, np.nan, 0.1], DOWN), "position has non-finite entries at [1]"),
        (lambda r: r.set_cartesian_target([0.5, 0.0, 0.1], [0, 0, 0, 0]), "orientation_quat must be a unit quaternion"),
        (lambda r: r.set_cartesian_target([2.0, 0.0, 0.1], DOWN), "position [2.0, 0.0, 0.1] is outside the twin workspace"),
        (lambda r: r.move_to_cartesian_pose([0.5, 0.0, np.inf], DOWN), "position has non-finite entries at [2]"),
        (lambda r: r.move_to_joint_positions([0.0] * 8), "joint_positions must have shape (7,), got shape (8,)"),
        (lambda r: r.move_to_joint_positions(["a"] * 7), "joint_positions must be 7 numbers"),
        (lambda r: r.gripper.move_to_position(-0.01), "gripper width must be in [0, 0.08] m, got -0.01"),
        (lambda r: r.set_compliance({"translational_stiffness": 1}), "compliance must be a serl_envs.compliance.Compliance"),
    ],
)
def test_bad_input_is_refused_before_it_reaches_the_arm(twin, call, message):
    before = [a.copy() for a in twin.target]
    with pytest.raises(ValueError) as err:
        call(twin)
    assert message in str(err.value)
    for a, b in zip(before, twin.target, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_twin_applies_compliance_and_reports_state_in_si(twin):
    soft = Compliance(translational_stiffness=500.0, translational_damping=60.0)
    twin.set_compliance(soft)
    assert twin.sim.compliance == soft
    state = twin.get_state()
    assert state["cartesian_position"].shape == (7,) and state["joint_positions"].shape == (7,)
    assert state["gripper_position"] == pytest.approx(0.025, abs=1e-3)  # resting on the 25 mm peg
    t0 = twin.clock()
    time.sleep(0.2)
    assert twin.clock() > t0  # the twin's clock runs in its own thread


def test_blocking_moves_arrive(twin):
    twin.move_to_cartesian_pose([0.52, 0.03, 0.14], DOWN)
    np.testing.assert_allclose(twin.get_state()["cartesian_position"][:3], [0.52, 0.03, 0.14], atol=0.003)
    goal = twin.get_state()["joint_positions"] + np.array([0.15, 0.0, 0.0, -0.1, 0.0, 0.1, 0.0])
    twin.move_to_joint_positions(goal)
    np.testing.assert_allclose(twin.get_state()["joint_positions"], goal, atol=0.02)


def test_target_filter_clips_to_the_box_and_the_speed_budget():
    box = SafetyBox((0.4, -0.1, 0.05), (0.6, 0.1, 0.2), (-0.1, -0.1, -0.5), (0.1, 0.1, 0.5))
    f = TargetFilter(box, DOWN, MotionLimits(max_linear_speed=1.0, burst_time=0.2))
    f.anchor(np.array([0.5, 0.0, 0.1]), DOWN, t=0.0)
    out = f(np.array([0.5, 0.0, 0.15]), DOWN, t=0.0)  # 5 cm at once: within the 0.2 m burst
    assert out.clipped == () and np.allclose(out.position, [0.5, 0.0, 0.15])
    out = f(np.array([0.5, 0.0, 0.5]), DOWN, t=0.0)  # 35 cm more: only the 15 cm left in the budget, then the box
    assert out.clipped == ("linear_speed", "z") and np.allclose(out.position, [0.5, 0.0, 0.2])
    out = f(np.array([0.5, -0.3, 0.2]), DOWN, t=0.05)  # 50 ms refill 5 cm of budget
    assert out.clipped == ("linear_speed",) and np.allclose(out.position, [0.5, -0.05, 0.2])
    out = f(np.array([0.7, -0.05, 0.2]), DOWN, t=1.0)
    assert out.clipped == ("x",) and np.allclose(out.position, [0.6, -0.05, 0.2])


def test_pacer_keeps_deadlines_and_counts_overruns():
    pacer = DeadlinePacer(0.01)
    start = time.perf_counter()
    pacer.start()
    for _ in range(5):
        pacer.wait()
    assert time.perf_counter() - start >= 0.05  # never earlier than the deadlines
    time.sleep(0.03)  # a step that took three periods
    pacer.wait()
    stats = pacer.stats()
    assert stats.ticks == 6 and stats.overruns >= 1  # (a loaded machine may add more)
    assert stats.period_jitter_max_ms >= 15.0  # the long step shows up as jitter


def test_backends_load_lazily_by_name(monkeypatch):
    assert backends.load_backend("twin").create is not None
    with pytest.raises(ValueError, match=r"unknown backend 'ur5'; available: \['franka', 'piper', 'twin'\]"):
        backends.load_backend("ur5")
    monkeypatch.setitem(backends.BACKENDS, "ur5", "ur5")
    with pytest.raises(ImportError, match="backend 'ur5' is not available in this install: module serl_envs.real.backends.ur5 is missing"):
        backends.load_backend("ur5")

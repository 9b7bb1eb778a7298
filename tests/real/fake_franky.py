"""franky with a simulated Panda behind it: the test double of the franka backend, at franky's own boundary.

`fake_franky(...)` returns a module that *is* the installed franky (its value types, motions, gains,
exceptions, RobotState and the Python `CartesianImpedanceTracker`) except for `Robot` and `Gripper`, which
talk to a MuJoCo Panda (the sim foundation's `SimRobot`) instead of an FCI socket. A `Hardware` thread steps
that arm in real time, the way the robot's own 1 kHz loop runs whatever motion franky handed it:

- a `CartesianImpedanceTrackingMotion` (what the tracker runs): each tick reads the motion's latest reference,
  gains and error clip from the real franky object and drives the sim's impedance controller with them;
- a `TorqueStopMotion`: holds the current pose and ends control; `CartesianMotion` / `JointMotion`: planned
  moves whose speed scales with the motion's relative dynamics factor;
- `inject_reflex(name)`: aborts the running motion with libfranka's ControlException text, sets the error
  flag and the Reflex mode in the RobotState, as a real reflex does; `recover_from_errors()` clears them.

Addresses: the hardware's ip connects, `HANG_IP` never answers (a non-routable address), any other is refused
with libfranka's NetworkException. `RealtimeConfig.Enforce` fails at the first motion with libfranka's
RealtimeException, as on a machine without a PREEMPT_RT kernel.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import franky
import mujoco
import numpy as np

from serl_envs.compliance import Compliance
from serl_envs.sim.make import ARMS
from serl_envs.sim.robot import SimConfig, SimRobot
from serl_envs.transforms import quat_conj, quat_from_rotvec, quat_mul, rotvec_from_quat

TICK = 0.01  # s of robot time per loop iteration
HANG_IP = "10.255.255.1"
REFUSED = "libfranka: Connection to FCI refused. Please install FCI feature or enable FCI mode in Desk."
NO_RT = "libfranka: Running kernel does not have realtime capabilities."
PREEMPTED = "libfranka: Move command preempted!"
V_MAX, W_MAX, DQ_MAX = 1.7, 2.5, 2.175  # m/s, rad/s, rad/s at relative dynamics factor 1


def _error_names() -> tuple[str, ...]:
    """The 41 flags of franky.Errors in the order of its pickled state."""
    n = len(franky.Errors().__getstate__())
    names = []
    for i in range(n):
        errors = franky.Errors.__new__(franky.Errors)
        errors.__setstate__(tuple(j == i for j in range(n)))
        names.append(repr(errors)[2:-2])
    return tuple(names)


ERROR_NAMES = _error_names()


def make_errors(active: set[str]) -> Any:
    unknown = active - set(ERROR_NAMES)
    if unknown:
        raise ValueError(f"not franky error flags: {sorted(unknown)}")
    errors = franky.Errors.__new__(franky.Errors)
    errors.__setstate__(tuple(name in active for name in ERROR_NAMES))
    return errors


def xyzw(q: np.ndarray) -> np.ndarray:
    return np.array([q[1], q[2], q[3], q[0]])


def wxyz(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[3], q[0], q[1], q[2]])


class Hardware:
    """One simulated Panda with its hand, answering at `ip`; its thread is the robot's control loop."""

    def __init__(self, ip: str = "172.16.0.2", home_pos=(0.5, 0.0, 0.3),
                 home_quat=(0.0, 1.0, 0.0, 0.0)) -> None:
        self.ip = ip
        self.sim = SimRobot(ARMS["panda"], (), np.array(home_pos), np.array(home_quat), Compliance(),
                            SimConfig(control_dt=TICK))
        self.sim.reset()
        self.sim.settle()
        m = self.sim.model
        self._q_adr = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.sim.arm.joint_names])
        self._dof_adr = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.sim.arm.joint_names])
        self.max_width = self.sim.max_gripper_width
        self.lock = threading.RLock()
        self.calls: list[tuple] = []  # every Robot/Gripper command, with its arguments
        self.robot_kwargs: dict[str, Any] = {}
        self.motion: Any = None
        self.motion_log: list[Any] = []  # every motion handed to Robot.move
        self._plan: dict[str, Any] = {}
        self._done = threading.Event()
        self._done.set()
        self._stored: BaseException | None = None  # what join_motion / poll_motion raise next
        self.errors: set[str] = set()
        self.last_motion_errors: set[str] = set()
        self.mode = franky.RobotMode.Idle
        self.gripper_cmd = 0.0  # 0 open .. 1 closed, the sim's convention
        self._reflex: str | None = None
        self.applied: Compliance = self.sim.compliance
        rs = self.sim.state()
        self.hold = (rs.tcp_pos.copy(), rs.tcp_quat.copy())
        self.snapshot, self.ticks = rs, 0
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="fake-franka", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=5.0)

    # --- the robot's control loop ---------------------------------------------------------------------
    def _loop(self) -> None:
        deadline = time.perf_counter()
        while self._running:
            with self.lock:
                self._tick()
            deadline += TICK
            lag = deadline - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
            else:
                deadline = time.perf_counter()

    def _tick(self) -> None:
        sim, m = self.sim, self.motion
        target = self.hold
        if isinstance(m, franky.CartesianImpedanceTrackingMotion):
            ref = m.get_reference()
            if ref is not None:
                target = (np.asarray(ref.target.translation, dtype=np.float64), wxyz(ref.target.quaternion))
            self._apply_gains(m)
        elif isinstance(m, franky.TorqueStopMotion):
            self._finish(None)
        elif isinstance(m, franky.CartesianMotion):
            target = self._cartesian_step(m)
        elif isinstance(m, franky.JointMotion):
            self._joint_step(m)
            target = self.hold
        if self._reflex is not None:
            name, self._reflex = self._reflex, None
            self.errors, self.last_motion_errors = {name}, {name}
            self.mode = franky.RobotMode.Reflex
            if self.motion is not None:
                self._finish(franky.ControlException(
                    f'libfranka: Move command aborted: motion aborted by reflex! ["{name}"]\n'
                    "control_command_success_rate: 1.00"))
        if self.motion is None and m is not None:
            rs = sim.state()
            target = self.hold = (rs.tcp_pos.copy(), rs.tcp_quat.copy())
        sim.command(target[0], target[1], self.gripper_cmd)
        sim.wait()
        self.snapshot, self.ticks = sim.state(), self.ticks + 1

    def _apply_gains(self, m: Any) -> None:
        gains, p = m.get_gains(), m.params
        k = np.diag(gains.stiffness)
        d = np.diag(gains.damping) if gains.damping is not None else 2.0 * np.sqrt(k)
        posture = np.asarray(m.get_nullspace_gains().posture_stiffness, dtype=np.float64).reshape(-1)
        c = Compliance(
            translational_stiffness=float(k[0]), translational_damping=float(d[0]),
            rotational_stiffness=float(k[3]), rotational_damping=float(d[3]),
            translational_clip=tuple(float(v) for v in p.translational_error_clip),
            rotational_clip=tuple(float(v) for v in p.rotational_error_clip),
            nullspace_stiffness=float(posture[0]) if posture.size else 0.0,
        )
        if c != self.applied:
            self.sim.set_compliance(c)
            self.applied = c

    def _cartesian_step(self, m: Any) -> tuple[np.ndarray, np.ndarray]:
        plan, rs = self._plan, self.sim.state()
        goal = m.target.pose.end_effector_pose
        goal_pos, goal_quat = np.asarray(goal.translation, dtype=np.float64), wxyz(goal.quaternion)
        if not plan:
            f = m.relative_dynamics_factor.velocity
            angle = float(np.linalg.norm(rotvec_from_quat(quat_mul(goal_quat, quat_conj(rs.tcp_quat)))))
            distance = float(np.linalg.norm(goal_pos - rs.tcp_pos))
            duration = max(distance / (V_MAX * f), angle / (W_MAX * f), TICK)
            plan.update(start=(rs.tcp_pos.copy(), rs.tcp_quat.copy()), duration=duration, t=0.0)
        plan["t"] += TICK
        s = min(plan["t"] / plan["duration"], 1.0)
        s = s * s * (3.0 - 2.0 * s)
        p0, q0 = plan["start"]
        rot = rotvec_from_quat(quat_mul(goal_quat, quat_conj(q0)))
        target = (p0 + s * (goal_pos - p0), quat_mul(quat_from_rotvec(s * rot), q0))
        pos_err = float(np.linalg.norm(rs.tcp_pos - goal_pos))
        rot_err = float(np.linalg.norm(rotvec_from_quat(quat_mul(goal_quat, quat_conj(rs.tcp_quat)))))
        if plan["t"] >= plan["duration"] and pos_err < 0.003 and rot_err < 0.03:
            self._finish(None)
        elif plan["t"] > plan["duration"] + 2.0:
            self._finish(franky.ControlException('libfranka: Move command aborted: motion aborted by reflex! '
                                                 '["max_goal_pose_deviation_violation"]'))
        return target

    def _joint_step(self, m: Any) -> None:
        plan, d = self._plan, self.sim.data
        goal = np.asarray(m.target.position, dtype=np.float64)
        if not plan:
            q0 = d.qpos[self._q_adr].copy()
            speed = DQ_MAX * m.relative_dynamics_factor.velocity
            duration = max(float(np.max(np.abs(goal - q0))) / speed, TICK)
            plan.update(start=q0, duration=duration, t=0.0)
        plan["t"] += TICK
        s = min(plan["t"] / plan["duration"], 1.0)
        d.qpos[self._q_adr] = plan["start"] + s * (goal - plan["start"])
        d.qvel[self._dof_adr] = 0.0
        mujoco.mj_kinematics(self.sim.model, d)
        rs = self.sim.state()
        self.hold = (rs.tcp_pos.copy(), rs.tcp_quat.copy())
        if s >= 1.0:
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        self.motion, self._plan = None, {}
        if error is not None:
            self._stored = error
        self._done.set()

    # --- what franky.Robot asks of the robot ----------------------------------------------------------
    def start(self, motion: Any) -> None:
        with self.lock:
            if self.errors or self.mode not in (franky.RobotMode.Idle, franky.RobotMode.Move):
                raise franky.CommandException('libfranka: Move command rejected: command not possible in the '
                                              f'current mode ("{self.mode.name}")!')
            torque = isinstance(motion, franky.BaseTorqueMotion)
            if self.motion is not None and torque != isinstance(self.motion, franky.BaseTorqueMotion):
                raise franky.InvalidMotionTypeException(
                    "The type of motion cannot change during runtime. Please ensure that the previous motion "
                    "finished before using a new type of motion.")
            self.motion_log.append(motion)
            self.motion, self._plan = motion, {}  # a running motion of the same type is taken over
            self._done.clear()

    def join(self, timeout: float | None) -> bool:
        if not self._done.wait(timeout):
            return False
        self._raise_stored()
        return True

    def _raise_stored(self) -> None:
        with self.lock:
            error, self._stored = self._stored, None
        if error is not None:
            raise error

    def preempt(self) -> None:
        with self.lock:
            if self.motion is not None:
                self._finish(franky.ControlException(PREEMPTED))

    def inject_reflex(self, name: str = "cartesian_reflex") -> None:
        if name not in ERROR_NAMES:
            raise ValueError(f"{name!r} is not a franky error flag")
        with self.lock:
            self._reflex = name

    def wait_ticks(self, n: int, timeout: float = 30.0) -> None:
        """Block until the control loop has run `n` more ticks."""
        end, deadline = self.ticks + n, time.monotonic() + timeout
        while self.ticks < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the fake robot loop did not run {n} ticks in {timeout} s")
            time.sleep(0.005)

    def robot_state(self) -> Any:
        """A real franky.RobotState built from the sim (through its pickle state: it has no constructor)."""
        with self.lock:
            rs = self.snapshot
            errors, last, mode = make_errors(self.errors), make_errors(self.last_motion_errors), self.mode
            in_motion = self.motion is not None
        A, E = franky.Affine, franky.ElbowState(float(rs.q[2]))
        z3, z6, z7, eye = np.zeros(3), np.zeros(6), np.zeros(7), np.eye(3)
        pose = A(rs.tcp_pos, xyzw(rs.tcp_quat))
        twist = franky.Twist(rs.tcp_twist[:3], rs.tcp_twist[3:])
        wrench = np.asarray(rs.wrench, dtype=np.float64)
        state = (
            pose, pose, A(), A(), A(), A(), 0.73, eye, z3, 0.0, eye, z3, 0.73, eye, z3, E, E, E, 0.0, 0.0,
            z7, z7, z7, rs.q, rs.q, rs.dq, rs.dq, z7, z7, z6, z7, z6, z7, wrench, wrench,
            franky.Twist(), z3, pose, franky.Twist(), franky.TwistAcceleration(), rs.q, rs.dq,
            errors, last, 1.0, franky.RobotMode.Move if in_motion and mode == franky.RobotMode.Idle else mode,
            franky.Duration(int(self.ticks * TICK * 1000)), rs.q, rs.dq, None, twist, None, None, None,
        )
        s = franky.RobotState.__new__(franky.RobotState)
        s.__setstate__(state)
        return s


def fake_franky(*hardware: Hardware) -> types.ModuleType:
    """The franky module with Robot and Gripper answering from `hardware` (by ip)."""
    by_ip = {h.ip: h for h in hardware}
    hang = threading.Event()

    def lookup(ip: str) -> Hardware:
        if ip == HANG_IP:
            hang.wait()  # never set: the address does not answer
        if ip not in by_ip:
            raise franky.NetworkException(REFUSED)
        return by_ip[ip]

    class Robot:
        """franky.Robot's surface used by the backend and by franky's CartesianImpedanceTracker."""

        def __init__(self, fci_hostname: str, relative_dynamics_factor: Any = 1.0,
                     default_torque_threshold: float = 20.0, default_force_threshold: float = 30.0,
                     controller_mode: Any = None, realtime_config: Any = franky.RealtimeConfig.Enforce,
                     **kalman: float) -> None:
            self._hw = lookup(fci_hostname)
            self._hw.robot_kwargs = {
                "relative_dynamics_factor": relative_dynamics_factor,
                "default_torque_threshold": default_torque_threshold,
                "default_force_threshold": default_force_threshold, "realtime_config": realtime_config,
            }
            self._realtime_config = realtime_config
            self.fci_hostname = fci_hostname

        def move(self, motion: Any, asynchronous: bool = False, limit_rate: bool = False,
                 cutoff_frequency: float = 100.0) -> None:
            self._hw.calls.append(("move", type(motion).__name__, asynchronous))
            if self._realtime_config == franky.RealtimeConfig.Enforce:
                raise franky.RealtimeException(NO_RT)
            self._hw.start(motion)
            if not asynchronous:
                self._hw.join(None)

        def join_motion(self, timeout: float | None = None) -> bool:
            return self._hw.join(timeout)

        def poll_motion(self) -> bool:
            self._hw._raise_stored()
            return self._hw.motion is not None

        def stop(self) -> None:
            self._hw.calls.append(("stop",))
            self._hw.preempt()

        def recover_from_errors(self) -> bool:
            self._hw.calls.append(("recover_from_errors",))
            with self._hw.lock:
                self._hw.errors = set()
                self._hw.mode = franky.RobotMode.Idle
            return True

        @property
        def state(self) -> Any:
            return self._hw.robot_state()

        @property
        def current_pose(self) -> Any:
            return franky.RobotPose(self.state.O_T_EE)

        @property
        def current_joint_positions(self) -> np.ndarray:
            return self.state.q

        @property
        def current_cartesian_velocity(self) -> Any:
            return franky.RobotVelocity(self.state.O_dP_EE_est)

        @property
        def is_in_control(self) -> bool:
            return self._hw.motion is not None

        @property
        def has_errors(self) -> bool:
            return bool(self._hw.errors)

    class Gripper:
        """franky.Gripper's blocking commands on the sim's fingers: widths in m, speeds in m/s, force in N."""

        def __init__(self, fci_hostname: str) -> None:
            self._hw = lookup(fci_hostname)

        def _go(self, width: float, speed: float) -> None:
            if not 0.0 <= width <= self._hw.max_width + 1e-9 or not speed > 0:
                raise franky.CommandException(f"libfranka gripper: invalid width {width} or speed {speed}")
            with self._hw.lock:
                self._hw.gripper_cmd = 1.0 - width / self._hw.max_width
            last, still = self.width, 0
            while still < 5:  # until the fingers stop (reached, or blocked by an object)
                self._hw.wait_ticks(1)
                now = self.width
                still = still + 1 if abs(now - last) < 1e-5 else 0
                last = now

        def move(self, width: float, speed: float) -> bool:
            self._hw.calls.append(("gripper.move", width, speed))
            self._go(width, speed)
            return abs(self.width - width) < 0.005

        def grasp(self, width: float, speed: float, force: float, epsilon_inner: float = 0.005,
                  epsilon_outer: float = 0.005) -> bool:
            self._hw.calls.append(("gripper.grasp", width, speed, force, epsilon_inner, epsilon_outer))
            self._go(width, speed)
            return width - epsilon_inner < self.width < width + epsilon_outer

        def open(self, speed: float) -> bool:
            self._hw.calls.append(("gripper.open", speed))
            self._go(self._hw.max_width, speed)
            return True

        def stop(self) -> bool:
            self._hw.calls.append(("gripper.stop",))
            return True

        @property
        def width(self) -> float:
            return float(self._hw.snapshot.gripper_width)

        @property
        def max_width(self) -> float:
            return self._hw.max_width

    module = types.ModuleType("franky")
    module.__dict__.update({k: v for k, v in vars(franky).items() if not k.startswith("__")})
    module.Robot, module.Gripper = Robot, Gripper
    return module

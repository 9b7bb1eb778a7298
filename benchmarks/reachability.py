"""Can each arm reach its task's safety box? Position error at every corner, driven by the env's own controller.

For every registered sim ID, the TCP is driven through the env's Cartesian impedance controller (`robot.command`,
the call `SerlEnv.step` makes) to each of the 8 corners of the ID's safety box, to the corners of the object spawn
region (at the height the expert grasps or works at) and to the task's target, at the task's nominal orientation
(insertion tasks: also at the board's yaw extremes). The target ramps from home at the task's top speed, then is
held; the error is |TCP - point| at the end. Contacts are switched off on the env's model for the drive, so the
table measures the arm's reach (joint limits, torque limits, gravity) and not objects that happen to be in the way.

    python -m benchmarks.reachability [--hold 1.5] [--ids SerlPiperPickCube-v0 ...]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # vision IDs render at reset

import gymnasium as gym
import mujoco
import numpy as np

import serl_envs
from serl_envs.env import SerlEnv
from serl_envs.tasks import bin_relocate, cable_route, drawer_open, pcb_insert, peg_insert, pick_cube
from serl_envs.transforms import quat_conj, quat_from_yaw, quat_mul, rotvec_from_quat

Point = tuple[str, np.ndarray, np.ndarray]  # label, TCP position, TCP quaternion


def box_corners(env: SerlEnv) -> list[Point]:
    box, quat = env.task.box, env.task.nominal_quat
    return [(f"corner {c}", np.array(c), quat) for c in itertools.product(*zip(box.low, box.high, strict=True))]


def _grid(xs, ys) -> list[tuple[float, float]]:
    return list(itertools.product(xs, ys))


def task_points(env: SerlEnv) -> tuple[list[Point], list[Point]]:
    """(spawn-region corners, targets): where the expert must put the TCP, from the task module's constants."""
    name, down = env.task.name, env.task.nominal_quat
    if name == "PickCube":
        m = pick_cube
        grasp = m.CUBE_HALF - 0.008
        spawn = [(f"cube {x, y}", np.array([x, y, grasp]), down) for x, y in _grid(m.CUBE_X, m.CUBE_Y)]
        lifted = grasp + m.LIFT_SUCCESS
        target = [(f"lifted {x, y}", np.array([x, y, lifted]), down) for x, y in _grid(m.CUBE_X, m.CUBE_Y)]
        return spawn, target
    if name in ("PegInsert", "PCBInsert"):
        m = peg_insert if name == "PegInsert" else pcb_insert
        cls = env.task
        spawn, target = [], []
        for x, y in _grid(m.BOARD_X, m.BOARD_Y):
            seated = np.array([x, y, cls.seated_tcp_z])
            spawn.append((f"hover {x, y}", seated + [0.0, 0.0, 0.05], down))
            for yaw in (-m.BOARD_YAW, m.BOARD_YAW):
                target.append((f"seated {x, y} yaw {yaw:+.2f}", seated, quat_mul(quat_from_yaw(yaw), down)))
        return spawn, target
    if name == "BinRelocate":
        m = bin_relocate
        spread = np.subtract(m.INNER_HALF, m.FINGER_ROOM) - m.BLOCK_HALF
        grasp = m.REST_Z - m.GRASP_DEPTH
        xs = (m.SOURCE_X[0] - spread[0], m.SOURCE_X[1] + spread[0])
        ys = (m.SOURCE_Y[0] - spread[1], m.SOURCE_Y[1] + spread[1])
        spawn = [(f"block {x:.3f}, {y:.3f}", np.array([x, y, grasp]), down) for x, y in _grid(xs, ys)]
        carry = m.WALL_TOP + m.BLOCK_HALF + 0.03
        target = [
            (f"bin {x, y} z {z:.3f}", np.array([x, y, z]), down)
            for (x, y), z in itertools.product(_grid(m.TARGET_X, m.TARGET_Y), (grasp + 0.004, carry))
        ]
        return spawn, target
    if name == "CableRoute":
        m = cable_route
        spawn, target = [], []
        for cx, cy, jitter in itertools.product(m.CLAMP_X, m.CLAMP_Y, (-m.HEADING_JITTER, m.HEADING_JITTER)):
            yaw = np.pi + jitter
            u = np.array([np.cos(yaw), np.sin(yaw)])
            plug = np.array([cx, cy]) + m.STRAIGHT_REACH * u
            spawn.append((f"plug {plug[0]:.3f}, {plug[1]:.3f}", np.array([*plug, m.GRASP_Z]), down))
            for along, side in itertools.product(m.CLIP_ALONG, (-m.CLIP_SIDE[1], m.CLIP_SIDE[1])):
                clip = np.array([cx, cy]) + along * u + side * np.array([-u[1], u[0]])
                laid = np.array([cx, cy]) + m.STRAIGHT_REACH * (clip - [cx, cy]) / np.linalg.norm(clip - [cx, cy])
                target.append((f"laid {laid[0]:.3f}, {laid[1]:.3f}", np.array([*laid, m.GRASP_Z]), down))
        return spawn, target
    if name == "DrawerOpen":
        m = drawer_open
        handles = [np.array([x, y, 0.0]) + m.HANDLE_OFFSET for x, y in _grid(m.CABINET_X, m.CABINET_Y)]
        spawn = [(f"handle {h[0]:.3f}, {h[1]:.3f}", h, down) for h in handles]
        pulled = [h + (m.OPEN_SUCCESS + 0.02) * m.OPENS_TOWARDS for h in handles]
        target = [(f"pulled {p[0]:.3f}, {p[1]:.3f}", p, down) for p in pulled]
        return spawn, target
    raise ValueError(f"no spawn/target points for task {name!r}; add them to benchmarks/reachability.py")


def drive(env: SerlEnv, pos: np.ndarray, quat: np.ndarray, hold: float) -> tuple[float, float]:
    """Ramp the controller's target from home to `pos` at the task's top speed, hold it; return the final position
    error (m) and orientation error (rad): an arm that reaches a position only by tilting the hand has not reached
    it."""
    env.reset(seed=0)
    robot, speed = env.robot, env.task.scale.linear
    start = robot.state().tcp_pos
    ramp = int(np.ceil(np.linalg.norm(pos - start) / (speed * env.dt)))
    grip = env.task.initial_gripper
    for k in range(ramp + round(hold / env.dt)):
        frac = min((k + 1) / max(ramp, 1), 1.0)
        robot.command(start + frac * (pos - start), quat, grip)
        robot.wait()
    state = robot.state()
    rot = rotvec_from_quat(quat_mul(quat, quat_conj(state.tcp_quat)))
    return float(np.linalg.norm(state.tcp_pos - pos)), float(np.linalg.norm(rot))


def measure(env_id: str, hold: float) -> dict:
    env = gym.make(env_id, disable_env_checker=True)
    u: SerlEnv = env.unwrapped
    u.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    spawn, target = task_points(u)
    corners = [drive(u, p, q, hold) for _, p, q in box_corners(u)]
    spawn_err = [(drive(u, p, q, hold), label) for label, p, q in spawn]
    target_err = [(drive(u, p, q, hold), label) for label, p, q in target]
    home = drive(u, np.asarray(u.task.home_pos, float), u.task.nominal_quat, hold)
    result = {
        "box": u.task.box,
        "corners": corners,
        "spawn": max((pos, label) for (pos, _), label in spawn_err),
        "target": max((pos, label) for (pos, _), label in target_err),
        "home": home[0],
        "rot": max(rot for _, rot in [*corners, *(e for e, _ in spawn_err + target_err), home]),
    }
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", nargs="*", default=serl_envs.sim_env_ids())
    parser.add_argument("--hold", type=float, default=1.5, help="s the target is held after the ramp")
    parser.add_argument("--tol", type=float, default=0.01, help="m: position errors above it are marked")
    parser.add_argument("--rot-tol", type=float, default=0.05, help="rad: orientation errors above it are marked")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, MuJoCo {mujoco.__version__}, hold {args.hold} s\n")
    header = " ".join(f"c{i}" for i in range(8))
    print(f"| ID | safety box low / high (m) | box corners c0..c7, error mm: {header} | spawn max (mm) | "
          f"target max (mm) | home (mm) | max rot. error (deg) |")
    print("|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    for env_id in args.ids:
        r = measure(env_id, args.hold)

        def mm(err: float, rot: float = 0.0) -> str:
            text = f"{1000 * err:.1f}" + (f" ({np.rad2deg(rot):.0f}°)" if rot >= np.deg2rad(1) else "")
            return f"**{text}**" if err > args.tol or rot > args.rot_tol else text

        box = r["box"]
        corners = ", ".join(mm(*e) for e in r["corners"])
        low, high = (", ".join(f"{v:g}" for v in side) for side in (box.low, box.high))
        print(f"| {env_id} | ({low}) / ({high}) | {corners} | {mm(r['spawn'][0])} ({r['spawn'][1]}) | "
              f"{mm(r['target'][0])} ({r['target'][1]}) | {mm(r['home'])} | {np.rad2deg(r['rot']):.1f} |", flush=True)
    print(f"\ncorners c0..c7 = itertools.product((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)); (n°): orientation error "
          f"when >= 1°; bold: > {1000 * args.tol:.0f} mm or > {np.rad2deg(args.rot_tol):.1f}°; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

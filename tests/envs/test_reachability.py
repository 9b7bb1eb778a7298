"""Every sim ID's arm reaches every corner of its safety box, pointing down, through the env's own controller; the
per-arm boxes (`Task.arm_boxes`) narrow the task's box for a smaller arm and leave the Franka's as they are."""

import itertools

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import serl_envs
from serl_envs.registry import SIM_ARMS
from serl_envs.spaces import SafetyBox
from serl_envs.tasks import TASKS
from serl_envs.transforms import quat_conj, quat_mul, rotvec_from_quat

IDS = serl_envs.sim_env_ids()
POS_TOL, ROT_TOL = 0.01, 0.05  # m, rad
# SERL's Franka boxes where SERL has the task, and this project's Franka boxes for the others: never changed.
FRANKA_BOXES = {
    "PickCube": ((0.25, -0.3, 0.005), (0.7, 0.3, 0.35)),
    "PegInsert": ((0.4, -0.1, 0.055), (0.6, 0.1, 0.2)),
    "PCBInsert": ((0.4, -0.1, 0.013), (0.6, 0.1, 0.116)),
    "BinRelocate": ((0.3, -0.28, 0.01), (0.7, 0.28, 0.3)),
    "CableRoute": ((0.3, -0.25, 0.002), (0.72, 0.25, 0.25)),
    "DrawerOpen": ((0.3, -0.2, 0.03), (0.7, 0.25, 0.3)),
}


def drive_to(env, pos: np.ndarray, quat: np.ndarray) -> tuple[float, float]:
    """From home, ramp the controller's target to `pos` at the task's top speed and hold it 1.5 s, as
    `SerlEnv.step` commands it; return the position (m) and orientation (rad) errors at the end."""
    robot, speed = env.robot, env.task.scale.linear
    robot.reset()
    robot.settle()
    start = robot.state().tcp_pos
    ramp = max(int(np.ceil(np.linalg.norm(pos - start) / (speed * env.dt))), 1)
    for k in range(ramp + round(1.5 / env.dt)):
        robot.command(start + min((k + 1) / ramp, 1.0) * (pos - start), quat, env.task.initial_gripper)
        robot.wait()
    state = robot.state()
    rot = rotvec_from_quat(quat_mul(quat, quat_conj(state.tcp_quat)))
    return float(np.linalg.norm(state.tcp_pos - pos)), float(np.linalg.norm(rot))


@pytest.mark.parametrize("env_id", IDS)
def test_every_corner_of_the_safety_box_is_reached_pointing_down(env_id):
    """Contacts are off for the drive: this is the arm's reach (joint and torque limits, gravity, the controller),
    not objects that a seed happens to place in the way. The same model, controller and box as the env."""
    env = gym.make(env_id, disable_env_checker=True)
    u = env.unwrapped
    u.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    box = u.task.box
    missed = {}
    for corner in itertools.product(*zip(box.low, box.high, strict=True)):
        pos_err, rot_err = drive_to(u, np.array(corner), u.task.nominal_quat)
        if pos_err > POS_TOL or rot_err > ROT_TOL:
            missed[corner] = (round(pos_err, 4), round(rot_err, 3))
    env.close()
    assert missed == {}, f"{env_id}: corners of {box} missed by (m, rad): {missed}"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_franka_boxes_are_unchanged(task):
    env = gym.make(f"SerlFranka{task}-v0", disable_env_checker=True)
    box = env.unwrapped.task.box
    low, high = FRANKA_BOXES[task]
    np.testing.assert_allclose(box.low, low, atol=1e-12)
    np.testing.assert_allclose(box.high, high, atol=1e-12)
    assert box == TASKS[task].box and env.unwrapped.action_map.box is box
    env.close()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_per_arm_boxes_narrow_the_task_box_and_are_the_ones_the_env_clips_to(task):
    cls = TASKS[task]
    assert set(cls.arm_boxes) <= set(SIM_ARMS.values()), f"{task}: arm_boxes names unknown arms"
    for arm_name, arm in SIM_ARMS.items():
        box = cls.box_for(arm)
        assert box == cls.arm_boxes.get(arm, cls.box)
        # Inside the task's box, with the same rotation bounds: an arm's box only gives up what it cannot reach.
        assert cls.box.contains(np.array(box.low)) and cls.box.contains(np.array(box.high))
        assert (box.rot_low, box.rot_high) == (cls.box.rot_low, cls.box.rot_high)
        env = gym.make(f"Serl{arm_name}{task}-v0", disable_env_checker=True)
        u = env.unwrapped
        assert u.task.box == box and u.action_map.box == box
        env.reset(seed=0)
        for sign in (1.0, -1.0):  # full-speed actions run the target into the box's faces, never beyond
            for _ in range(30):
                env.step(np.full(env.action_space.shape, sign, np.float32))
                assert box.contains(u.target_pos)
        env.close()


def test_the_piper_needs_its_own_boxes_and_a_real_station_keeps_its_box():
    """The Piper's overrides exist because it cannot reach the Franka-sized boxes; without an arm (a real station,
    whose box comes from its config) the class's box stands."""
    assert {task for task, cls in TASKS.items() if "piper" in cls.arm_boxes} == {
        "PickCube", "BinRelocate", "CableRoute", "DrawerOpen"
    }
    pick = TASKS["PickCube"]
    assert pick().box == pick.box == pick(arm="panda").box
    assert pick(arm="piper").box == SafetyBox(low=(0.25, -0.22, 0.005), high=(0.62, 0.22, 0.16))
    env = gym.make("SerlPiperPickCube-v0", disable_env_checker=True)
    u = env.unwrapped
    u.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    pos_err, rot_err = drive_to(u, np.array(pick.box.high), u.task.nominal_quat)  # the Franka's far high corner
    assert pos_err > POS_TOL or rot_err > ROT_TOL
    env.close()

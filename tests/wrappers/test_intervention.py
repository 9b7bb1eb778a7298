"""InterventionWrapper semantics with scripted devices on real sim envs."""

import gymnasium as gym
import numpy as np
import pytest

import serl_envs  # noqa: F401
from serl_envs.spaces import ActionLayout
from serl_envs.wrappers import InterventionWrapper
from serl_envs.wrappers.devices import ActionMapping, DeviceAction, ExpertDevice, ScriptedDevice
from serl_envs.wrappers.devices.base import Device, EventLatch


def make(env_id="SerlFrankaPickCube-v0"):
    return gym.make(env_id, disable_env_checker=True)


def test_intervene_action_present_only_when_active_and_executed():
    human = np.array([0.0, 0.8, -0.3, 1.0], dtype=np.float32)
    policy = np.array([0.5, 0.0, 0.0, -1.0], dtype=np.float32)
    device = ScriptedDevice(lambda ep, t: human, active=lambda ep, t: t % 3 == 1)
    env = InterventionWrapper(make(), device)
    twin = make()  # steps the action that should have been executed
    env.reset(seed=4)
    twin.reset(seed=4)
    for t in range(9):
        obs, reward, _, _, info = env.step(policy)
        expected = human if t % 3 == 1 else policy
        twin_obs, twin_reward, *_ = twin.step(expected)
        np.testing.assert_array_equal(obs, twin_obs)
        assert reward == twin_reward
        if t % 3 == 1:
            np.testing.assert_array_equal(info["intervene_action"], human)
        else:
            assert "intervene_action" not in info


def test_device_action_mapping_scales_drops_rotation_and_keeps_gripper():
    commands = iter(
        [
            DeviceAction(np.array([1.0, -0.5, 0.2, 0.9, 0.9, 0.9]), gripper=1.0),
            DeviceAction(np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0])),  # no gripper command: stays closed
        ]
    )
    device = ScriptedDevice(lambda ep, t: next(commands), active=lambda ep, t: t < 2)
    env = InterventionWrapper(make(), device, mapping=ActionMapping(translation=0.5, gripper=1.0))
    env.reset(seed=0)
    np.testing.assert_allclose(env.hold_action(), [0, 0, 0, -1])  # PickCube starts open
    _, _, _, _, info = env.step(env.hold_action())
    np.testing.assert_allclose(info["intervene_action"], [0.5, -0.25, 0.1, 1.0])
    _, _, _, _, info = env.step(env.hold_action())
    np.testing.assert_allclose(info["intervene_action"], [0.0, 0.0, -0.5, 1.0])
    np.testing.assert_allclose(env.hold_action(), [0, 0, 0, 1])
    env.reset(seed=0)  # a new episode starts from the task's initial gripper again
    np.testing.assert_allclose(env.hold_action(), [0, 0, 0, -1])


def test_rotation_layout_gets_rotations_and_no_gripper():
    device = ScriptedDevice(
        lambda ep, t: DeviceAction(np.array([0.1, 0.2, 0.3, 0.4, -0.5, 0.6]), gripper=1.0)
    )
    env = InterventionWrapper(make("SerlFrankaPegInsert-v0"), device, mapping=ActionMapping(rotation=2.0))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(6, dtype=np.float32))
    np.testing.assert_allclose(info["intervene_action"], [0.1, 0.2, 0.3, 0.8, -1.0, 1.0], rtol=1e-6)


class MarkingDevice(Device):
    """Idle device whose marks the test sets."""

    def __init__(self):
        self.latch = EventLatch()

    def read(self):
        return None

    def events(self):
        return self.latch.drain()


def test_events_are_reported_once_and_dropped_at_reset():
    device = MarkingDevice()
    env = InterventionWrapper(make(), device)
    env.reset(seed=0)
    device.latch.mark("success")
    device.latch.mark("end")
    _, _, _, _, info = env.step(env.hold_action())
    assert info["human_success"] is True and info["human_end"] is True and "human_failure" not in info
    _, _, _, _, info = env.step(env.hold_action())
    assert not {"human_success", "human_end"} & info.keys()
    device.latch.mark("failure")
    env.reset(seed=1)
    _, _, _, _, info = env.step(env.hold_action())
    assert "human_failure" not in info


def test_expert_device_takes_over_the_last_part_of_each_episode():
    base = make()
    env = InterventionWrapper(base, ExpertDevice(base, active_fraction=0.6))
    for seed in (0, 1):
        env.reset(seed=seed)
        flags = []
        for _ in range(100):
            _, _, _, truncated, info = env.step(env.hold_action())
            flags.append("intervene_action" in info)
        assert flags == [False] * 40 + [True] * 60
        assert info["is_success"] and truncated


def test_bad_configurations_raise_clear_errors():
    base = make()
    with pytest.raises(ValueError, match=r"does not match the env's action space shape \(4,\)"):
        InterventionWrapper(base, ScriptedDevice(lambda ep, t: None), layout=ActionLayout(rotation=True))
    with pytest.raises(ValueError, match="active_fraction must be in"):
        ExpertDevice(base, active_fraction=1.5)
    with pytest.raises(ValueError, match="not both"):
        ExpertDevice(base, active_fraction=0.5, schedule=lambda ep, t: True)
    env = InterventionWrapper(base, ScriptedDevice(lambda ep, t: np.zeros(3)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"device returned an action of shape \(3,\), expected \(4,\)"):
        env.step(env.hold_action())
    with pytest.raises(ValueError, match="twist must be 6 finite numbers"):
        DeviceAction(np.array([0.0, np.nan, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"gripper must be in \[-1, 1\] or None, got 2.0"):
        DeviceAction(np.zeros(6), gripper=2.0)

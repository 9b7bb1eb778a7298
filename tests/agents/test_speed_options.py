"""Speed options keep results: torch.compile and AMP match eager fp32; the ensemble is truly vectorized."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.profiler import profile

from serl_agents import SACAgent

TINY = {"hidden_dims": [16]}


def tiny_agent(**kwargs) -> SACAgent:
    return SACAgent.create_states(
        torch.zeros(1, 5), torch.zeros(1, 2), critic_network_kwargs=TINY, policy_network_kwargs=TINY,
        critic_ensemble_size=kwargs.pop("critic_ensemble_size", 3), seed=0, **kwargs,
    )  # fmt: skip


def batch(seed: int, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(size, 5, generator=g),
        "actions": torch.rand(size, 2, generator=g) * 2 - 1,
        "rewards": torch.randn(size, generator=g),
        "masks": torch.ones(size),
        "next_observations": torch.randn(size, 5, generator=g),
    }


def train(agent: SACAgent, steps: int = 3) -> list[dict[str, float]]:
    return [dict(agent.update(batch(step))[1]) for step in range(steps)]


def assert_infos_close(actual, expected, rtol, atol):
    for step, (got, want) in enumerate(zip(actual, expected, strict=True)):
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=rtol, abs=atol), (step, key, got[key], value)


@pytest.mark.timeout(300)
def test_compiled_update_matches_eager():
    """One compile (full updates only). Tolerance rtol 1e-4: inductor may reorder float reductions."""
    eager = train(tiny_agent())
    compiled = train(tiny_agent(compile=True))
    assert_infos_close(compiled, eager, rtol=1e-4, atol=1e-6)


def test_amp_matches_fp32_within_bfloat16_precision():
    """On CPU, AMP autocasts matmuls to bfloat16 (8-bit mantissa); losses agree to about 5%."""
    fp32 = train(tiny_agent())
    amp = train(tiny_agent(amp=True))
    assert_infos_close(amp, fp32, rtol=5e-2, atol=2e-3)
    assert tiny_agent(amp=True).grad_scaler is None  # no loss scaling needed for bfloat16


def test_update_runs_the_same_ops_for_2_and_10_critics():
    """No Python loop over critics anywhere (networks, target update, optimizer): the op count of an
    update does not depend on the ensemble size."""

    def op_counts(num_critics: int) -> Counter:
        agent = tiny_agent(critic_ensemble_size=num_critics)
        agent.update(batch(0))
        with profile() as prof:
            agent.update(batch(1), utd_ratio=2)
        return Counter(event.name for event in prof.events() if event.name.startswith("aten::"))

    assert op_counts(2) == op_counts(10)


def test_fused_adam_and_float_infos():
    agent = tiny_agent()
    assert agent.optimizer.defaults["fused"] is True
    _, info = agent.update(batch(0))
    assert set(info) == {
        "critic_loss", "predicted_qs", "target_qs", "actor_loss", "entropy", "temperature_loss", "temperature"
    }  # fmt: skip
    assert all(type(value) is float for value in info.values())

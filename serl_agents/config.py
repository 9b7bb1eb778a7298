"""`serl train` configuration: one frozen dataclass, named presets of the published recipes, and a tiny
dataclass -> argparse bridge so every field is a command-line flag and `--print-config` shows what is in effect.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTERVENTION_DEVICES = ("keyboard", "spacemouse", "gamepad", "expert")
GRASP_CRITIC_MODES = ("off", "on", "auto")
DEFAULT_AGENT_KWARGS: dict[str, Any] = {"critic_ensemble_size": 2, "critic_subsample_size": None}
# BC: SERL's Gaussian MLE at a constant 3e-4 learns nothing on PickCube from 20 demos in 8k steps (0% success):
# its std collapses on the saturated (+-1) action dims and the mean is barely fitted. A deterministic MSE policy on
# demo-standardised states, lr 1e-3 cosine-decayed to 0 over the run (lr_decay_steps = steps), reaches >= 80%
# (benchmarks/README.md). SERL's recipe: --agent-kwargs '{"loss": "mle", "lr": 3e-4, "lr_decay_steps": 0,
# "normalize_observations": false}'.
DEFAULT_BC_KWARGS: dict[str, Any] = {"loss": "mse", "lr": 1e-3, "normalize_observations": True}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run uses.

    Defaults are a CPU-friendly RLPD recipe that learns PickCube on a laptop: SAC with HIL-SERL's 2-critic ensemble,
    UTD 4, and 20 scripted-expert demos mixed 50/50 into every batch (SERL used 20 human demos on every task). The
    presets reproduce the published recipes exactly (`--preset serl-sac-state`, `serl-drq`, `hil-serl`).
    """

    env: str = "SerlFrankaPickCube-v0"  # a registered Gymnasium ID
    # gym.make keyword arguments for every env of the run (training, evaluation, expert demos, async actors),
    # e.g. {"image_size": [64, 64]} for cheaper cameras (the drq-cpu preset)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent: str = "sac"  # sac | drq | bc
    steps: int = 15_000  # env steps to train for
    seed: int = 0  # seeds the agent, the replay sampling and every env reset
    out: Path = Path("runs/default")  # run directory: config.json, tb/, eval.csv, checkpoints/, videos/
    device: str = "auto"  # torch device, as in SB3: auto (cuda if available) | cpu | cuda
    intervention: str | None = None  # human in the loop: keyboard | spacemouse | gamepad | expert (scripted, sim IDs)
    intervention_fraction: float = 0.3  # with --intervention expert: the expert takes the last 30% of each episode
    # with --intervention expert: only the first N episodes get help (None: every episode), as a person in
    # HIL-SERL intervenes often early in training and rarely later
    intervention_episodes: int | None = None
    torch_threads: int = 0  # CPU threads for torch; 0: torch's default. 1 avoids thrashing on a shared, busy machine
    batch_size: int = 256  # transitions per gradient step
    utd_ratio: int = 4  # gradient steps per env step; all but the last update the critic only (SERL: 8 state, 4 DrQ)
    random_steps: int = 0  # uniform-random actions before the policy acts (SERL sims: 1000; demos make it unneeded)
    training_starts: int = 256  # env steps before the first update (SERL sims: 1000)
    replay_capacity: int = 1_000_000  # frames in the online buffer (SERL: 1e6 state, 2e5 images)
    demos: Path | None = None  # a Minari dataset (from `serl record-demos`); batches become 50/50 demo/online
    # scripted-expert demos (sim IDs): None = 20 on sim IDs unless --demos is given, 0 elsewhere; 0 turns them off
    expert_demos: int | None = None
    demo_fraction: float = 0.5  # share of each batch from the demo buffer when --demos is set (RLPD/SERL: 0.5)
    eval_every: int = 2000  # env steps between evaluations (SERL: eval_period 2000)
    eval_episodes: int = 10  # seeded deterministic episodes per evaluation
    video: bool = True  # write an mp4 of the first evaluation episode
    checkpoint_every: int = 5000  # env steps between checkpoints (agent + replay buffer + loop state)
    resume: bool = False  # continue from out/checkpoints if present
    log_every: int = 100  # env steps between TensorBoard scalars
    # SACConfig/DrQConfig/BCConfig fields, e.g. {"discount": 0.97}; sac/drq default to HIL-SERL's ensemble of 2,
    # bc to DEFAULT_BC_KWARGS (MSE, standardised states, lr 1e-3 decayed over `steps`)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    reward: str = "env"  # env: the env's reward | vice: a success classifier trained online on goal examples (drq)
    goal_examples: Path | None = None  # --reward vice: a Minari dataset (its is_success frames) or a folder of PNGs
    vice_kwargs: dict[str, Any] = field(default_factory=dict)  # VICEConfig fields, e.g. {"gradient_penalty": 10.0}
    # HIL-SERL's learned gripper (sac/drq; serl_agents.grasp): the actor moves the arm, a DQN grasp critic
    # picks open/stay/close; envs are wrapped GripperHoldWrapper(GripperPenaltyWrapper(env, grasp_penalty)).
    # off | on (error on a task without a gripper) | auto (on where the task's action has a gripper; the
    # hil-serl preset). True/False are accepted as on/off.
    grasp_critic: str = "off"
    grasp_penalty: float = -0.02  # grasp critic's reward on each step that toggles the gripper (HIL-SERL)

    def __post_init__(self) -> None:
        if self.agent not in ("sac", "drq", "bc"):
            raise ValueError(f"agent must be one of ['bc', 'drq', 'sac'], got {self.agent!r}")
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"env_kwargs must be a JSON object of gym.make arguments, got {self.env_kwargs!r}")
        if self.agent in ("sac", "drq"):  # filled in here so --print-config shows the values in effect
            object.__setattr__(self, "agent_kwargs", {**DEFAULT_AGENT_KWARGS, **self.agent_kwargs})
        if self.agent == "bc":
            bc_defaults = {**DEFAULT_BC_KWARGS, "lr_decay_steps": self.steps}
            object.__setattr__(self, "agent_kwargs", {**bc_defaults, **self.agent_kwargs})
        if self.intervention is not None and self.intervention not in INTERVENTION_DEVICES:
            raise ValueError(
                f"intervention must be one of {list(INTERVENTION_DEVICES)} or None, got {self.intervention!r}"
            )
        if not 0.0 <= self.intervention_fraction <= 1.0:
            raise ValueError(f"intervention_fraction must be in [0, 1], got {self.intervention_fraction}")
        if self.intervention_episodes is not None and self.intervention_episodes < 0:
            raise ValueError(f"intervention_episodes must be >= 0 or None, got {self.intervention_episodes}")
        if self.intervention_episodes is not None and self.intervention != "expert":
            raise ValueError("intervention_episodes schedules the scripted expert: it needs --intervention expert")
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0, got {self.torch_threads}")
        for name in ("steps", "batch_size", "utd_ratio", "eval_episodes", "replay_capacity", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.utd_ratio:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by utd_ratio {self.utd_ratio}")
        if self.expert_demos is not None and self.expert_demos < 0:
            raise ValueError(f"expert_demos must be >= 0, got {self.expert_demos}")
        if self.expert_demos and self.demos is not None:
            raise ValueError("pass either demos (a dataset) or expert_demos (scripted rollouts), not both")
        if not 0.0 < self.demo_fraction < 1.0:
            raise ValueError(f"demo_fraction must be in (0, 1), got {self.demo_fraction}")
        if self.reward not in ("env", "vice"):
            raise ValueError(f"reward must be 'env' or 'vice', got {self.reward!r}")
        if self.reward == "vice" and (self.agent != "drq" or self.goal_examples is None):
            raise ValueError("reward 'vice' needs --agent drq and --goal-examples DATASET (images of the task done)")
        if self.reward == "env" and self.goal_examples is not None:
            raise ValueError("goal_examples are for --reward vice")
        if isinstance(self.grasp_critic, bool):
            object.__setattr__(self, "grasp_critic", "on" if self.grasp_critic else "off")
        if self.grasp_critic not in GRASP_CRITIC_MODES:
            raise ValueError(
                f"grasp_critic must be one of {list(GRASP_CRITIC_MODES)}, got {self.grasp_critic!r}"
            )
        if self.grasp_critic == "on" and self.agent not in ("sac", "drq"):
            raise ValueError(f"grasp_critic 'on' needs agent 'sac' or 'drq', got {self.agent!r}")
        if not math.isfinite(self.grasp_penalty):
            raise ValueError(f"grasp_penalty must be finite, got {self.grasp_penalty!r}")

    @property
    def n_expert_demos(self) -> int:
        """Expert demos this run rolls out: the explicit value, else 20 on sim IDs without --demos."""
        if self.expert_demos is not None:
            return self.expert_demos
        is_sim = self.env.startswith("Serl") and not self.env.endswith("Real-v0")
        return 20 if is_sim and self.demos is None and self.agent != "bc" else 0

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["demos"] = None if self.demos is None else str(self.demos)
        data["goal_examples"] = None if self.goal_examples is None else str(self.goal_examples)
        return json.dumps(data, indent=2, sort_keys=True)


# The published recipes (REFERENCE §A.5, §B.1/§B.4). Agent fields go to agent_kwargs.
PRESETS: dict[str, dict[str, Any]] = {
    "serl-sac-state": {
        "agent": "sac", "utd_ratio": 8, "batch_size": 256, "random_steps": 1000, "training_starts": 1000,
        "replay_capacity": 1_000_000, "expert_demos": 0,
        "agent_kwargs": {"critic_ensemble_size": 10, "critic_subsample_size": 2, "discount": 0.99,
                         "temperature_init": 1e-2, "backup_entropy": False},
    },
    "serl-drq": {
        "agent": "drq", "utd_ratio": 4, "batch_size": 256, "random_steps": 1000, "training_starts": 1000,
        "replay_capacity": 200_000,
        "agent_kwargs": {"critic_ensemble_size": 10, "critic_subsample_size": 2, "discount": 0.96,
                         "temperature_init": 1e-2, "backup_entropy": False},
    },
    # Not a published recipe: DrQ sized for a laptop CPU (~80x less learner work per env step than serl-drq, measured
    # by benchmarks/drq_updates.py): 64x64 cameras, a half-width "small" encoder, bf16 autocast, batch 128, UTD 2,
    # HIL-SERL's 2 critics.
    "drq-cpu": {
        "agent": "drq", "utd_ratio": 2, "batch_size": 128, "replay_capacity": 200_000,
        "env_kwargs": {"image_size": [64, 64]},
        "agent_kwargs": {"critic_ensemble_size": 2, "critic_subsample_size": None, "discount": 0.99, "amp": True,
                         "encoder_kwargs": {"features": [16, 32, 64, 128]}},
        "vice_kwargs": {"encoder_kwargs": {"features": [16, 32, 64, 128]}},  # with --reward vice
    },
    "hil-serl": {
        "agent": "drq", "utd_ratio": 2, "batch_size": 256, "random_steps": 0, "training_starts": 100,
        "replay_capacity": 200_000, "demo_fraction": 0.5, "grasp_critic": "auto", "grasp_penalty": -0.02,
        "agent_kwargs": {"critic_ensemble_size": 2, "critic_subsample_size": None, "discount": 0.97,
                         "temperature_init": 1e-2, "backup_entropy": False},
    },
}


MERGED_FIELDS = ("agent_kwargs", "env_kwargs", "vice_kwargs")  # a preset's dict and an override's merge key by key


def apply_preset(name: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """Preset values, then explicit overrides on top; the `MERGED_FIELDS` dicts are merged key by key, so
    `--agent-kwargs '{"discount": 0.9}'` changes the discount and keeps the rest of the preset's agent."""
    if name is not None and name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    values = dict(PRESETS.get(name, {})) if name else {}
    for key, value in overrides.items():
        if key in MERGED_FIELDS and isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    return TrainConfig(**values)


def _flag_type(hint: Any):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _flag_type(inner)
    if hint is bool:
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    if hint in (dict[str, Any], dict) or origin is dict:
        return json.loads
    return hint


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One `--field-name` flag per dataclass field, defaulting to 'not given' so presets can fill in."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        parser.add_argument(flag, type=_flag_type(hints[f.name]), default=argparse.SUPPRESS,
                            help=f"(default: {default!r})")


def config_from_args(args: argparse.Namespace, preset: str | None) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    return apply_preset(preset, overrides)


def load_run_config(run_dir: Path) -> TrainConfig:
    data = json.loads((Path(run_dir) / "config.json").read_text())
    data["out"] = Path(data["out"])
    data["demos"] = None if data["demos"] is None else Path(data["demos"])
    if data.get("goal_examples") is not None:
        data["goal_examples"] = Path(data["goal_examples"])
    return TrainConfig(**data)

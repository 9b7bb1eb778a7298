"""Settings of an asynchronous run (`serl train --async`): where the processes go and how they talk.

The training recipe itself stays in `TrainConfig`; this holds only what the actor/learner split adds, so the
synchronous loop's config is unchanged. Every field is a `serl train` flag (`--num-actors 2`, ...).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from serl_agents.config import add_dataclass_flags

RAY_OPTION_KEYS = ("num_cpus", "num_gpus", "memory")  # Ray actor options; any other key is a custom resource


@dataclass(frozen=True)
class AsyncConfig:
    """Actor/learner layout, message sizes and fault bounds. Defaults suit one laptop (local Ray)."""

    num_actors: int = 1  # actor processes, each stepping its own copy of the env
    ray_address: str | None = None  # an existing Ray cluster ("auto", "host:6379", "ray://host:10001"); None: local Ray
    # Ray resources per actor and for the learner: num_cpus, num_gpus, memory, and any other key as a custom
    # resource, e.g. {"robot_pc": 1} pins the actors to the node started with `ray start --resources '{"robot_pc": 1}'`
    actor_resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1})  # per actor
    learner_resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1})  # e.g. {"num_gpus": 1}
    send_every: int = 50  # transitions per batch an actor sends (also sent at every episode end)
    pull_every: int = 30  # env steps between an actor's weight pulls (SERL: steps_per_update 30)
    publish_every: int = 10  # learner updates between weight publications
    max_in_flight: int = 4  # unanswered batches an actor may have before it waits (bounded) for the learner
    timeout_s: float = 30.0  # longest wait for any call; a learner silent this long counts as dead
    startup_timeout_s: float = 180.0  # to place and start a worker process (Ray scheduling, imports, env)
    checkpoint_timeout_s: float = 900.0  # for the learner's checkpoint when pausing (a large image buffer is slow)
    max_actor_restarts: int = 5  # restarts of one actor before the whole run stops with an error
    realtime: bool = False  # actors pace a sim to its control rate (1 / env.dt), as a robot runs; for a person in the loop
    learner_nice: int = 5  # niceness added to the learner's process: on shared cores the actors (robot loops) go first
    evaluate: bool = True  # the learner evaluates on its own copy of the env at --eval-every (sim IDs; off for real)

    def __post_init__(self) -> None:
        for name in ("num_actors", "send_every", "pull_every", "publish_every", "max_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("timeout_s", "startup_timeout_s", "checkpoint_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not 0 <= self.learner_nice <= 19:
            raise ValueError(f"learner_nice must be in [0, 19] (a lower priority, no root needed), got {self.learner_nice}")
        if self.max_actor_restarts < 0:
            raise ValueError(f"max_actor_restarts must be >= 0, got {self.max_actor_restarts}")
        for name in ("actor_resources", "learner_resources"):
            ray_options(getattr(self, name), name)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def ray_options(resources: dict[str, Any], name: str = "resources") -> dict[str, Any]:
    """Ray `.options(...)` for a resources dict: num_cpus/num_gpus/memory as such, other keys as custom resources."""
    if not isinstance(resources, dict):
        raise ValueError(f"{name} must be a JSON object such as {{\"num_gpus\": 1}}, got {resources!r}")
    custom: dict[str, float] = {}
    options: dict[str, Any] = {}
    for key, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name}[{key!r}] must be a number >= 0, got {value!r}")
        if key in RAY_OPTION_KEYS:
            options[key] = value
        else:
            custom[key] = float(value)
    if custom:
        options["resources"] = custom
    return options


def add_async_flags(parser) -> None:
    """`--async` plus one flag per `AsyncConfig` field."""
    parser.add_argument("--async", dest="run_async", action="store_true",
                        help="run actors and a learner as Ray actors (pip install \"serl-torch[distributed]\")")
    add_dataclass_flags(parser, AsyncConfig)


def async_config_from_args(args) -> AsyncConfig | None:
    """The `AsyncConfig` of parsed flags, None for a synchronous run; async flags without --async are an error."""
    names = {f.name for f in dataclasses.fields(AsyncConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if not getattr(args, "run_async", False):
        if given:
            flags = sorted("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{', '.join(flags)} only apply to asynchronous runs: add --async")
        return None
    return AsyncConfig(**given)

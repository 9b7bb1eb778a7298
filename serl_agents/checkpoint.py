"""Agent checkpoints: one file, written atomically, read without unpickling arbitrary objects.

A checkpoint holds tensors (weights, optimizer moments, RNG states) plus the config and observation
layout as JSON strings, saved with `torch.save` and read with `torch.load(weights_only=True)`, so a
file from an untrusted source cannot run code. It is written to a temporary file in the same
directory and moved into place with `os.replace`: a crash mid-write leaves the previous checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import torch
from torch import nn

from serl_agents.batch import ObsSpec

FORMAT = "serl_agents.checkpoint/1"


def atomic_save(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """`torch.save` to `path` through a temp file + fsync + `os.replace`; the old file survives any failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def config_to_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(cls: type, text: str) -> Any:
    return _from_dict(cls, json.loads(text))


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen dataclass from `dataclasses.asdict` output; JSON lists become tuples."""
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"checkpoint config has keys {unknown} that {cls.__name__} does not know")
    return cls(**{key: _convert(hints[key], value) for key, value in data.items()})


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if dataclasses.is_dataclass(option) and isinstance(value, dict):
            return _from_dict(option, value)
        if typing.get_origin(option) is tuple and isinstance(value, list):
            inner = typing.get_args(option)
            return tuple(_convert(inner[0] if inner else Any, item) for item in value)
    return value


class CheckpointMixin:
    """`save(path)` / `Agent.load(path, device=...)` for agents built by `cls._build(...)`.

    The agent provides: `config` (frozen dataclass of type `cls.config_class`), `obs_spec`,
    `action_dim`, `seed`, `step`, `optimizer`, `rngs` (dict of torch.Generator), an optional
    `grad_scaler`, and the classmethod `_build(config, obs_spec, action_dim, device, seed, encoder)`.
    Round trip: identical weights, optimizer moments, RNG streams and step count, so the next
    update and the next sampled action are identical to the ones the saved agent would produce.
    """

    config_class: type

    def save(self, path: str | os.PathLike) -> None:
        """Write the full training state to `path` (atomically; parent directories are created)."""
        agent = typing.cast(Any, self)
        payload = {
            "format": FORMAT,
            "agent": type(self).__name__,
            "config": config_to_json(agent.config),
            "obs_spec": agent.obs_spec.to_json(),
            "action_dim": agent.action_dim,
            "seed": agent.seed,
            "step": agent.step,
            "device_type": agent.device.type,
            "model": agent.state_dict(),
            "optimizer": agent.optimizer.state_dict(),
            "rngs": {name: rng.get_state() for name, rng in agent.rngs.items()},
            "grad_scaler": agent.grad_scaler.state_dict() if agent.grad_scaler is not None else {},
        }
        atomic_save(payload, path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        encoder: nn.Module | None = None,
        **config_overrides: Any,
    ) -> Any:
        """Rebuild an agent from `save`'s file on `device`.

        `config_overrides` replace runtime options such as `compile=True` or `amp=False`. `encoder`
        is needed only if the agent was created with a custom encoder module (its weights are then
        loaded into the module you pass). RNG streams continue exactly when loaded on the same
        device type; across CPU/CUDA they are re-seeded from (seed, step), since their states differ.
        """
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a serl_agents checkpoint (format {FORMAT!r})")
        if payload["agent"] != cls.__name__:
            raise ValueError(f"{path} holds a {payload['agent']}; load it with {payload['agent']}.load")
        config = config_from_json(cls.config_class, payload["config"])
        if config_overrides:
            config = dataclasses.replace(config, **config_overrides)
        device = torch.device(device)
        agent = cls._build(  # type: ignore[attr-defined]
            config,
            ObsSpec.from_json(payload["obs_spec"]),
            payload["action_dim"],
            device,
            payload["seed"],
            encoder,
        )
        agent.load_state_dict(payload["model"])
        agent.optimizer.load_state_dict(payload["optimizer"])
        agent.step = payload["step"]
        for index, (name, rng) in enumerate(agent.rngs.items()):
            if device.type == payload["device_type"]:
                rng.set_state(payload["rngs"][name])
            else:
                rng.manual_seed((payload["seed"] * 1_000_003 + payload["step"]) * 7 + index)
        if agent.grad_scaler is not None and payload["grad_scaler"]:
            agent.grad_scaler.load_state_dict(payload["grad_scaler"])
        return agent

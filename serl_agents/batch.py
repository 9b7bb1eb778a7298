"""Checking and converting what users hand to an agent: observations and training batches.

An agent learns the layout of one observation (`ObsSpec`) from the example passed to `create_*`;
every later observation or batch is checked against it, and a mistake fails with a `ValueError`
that names the key, instead of a shape error deep inside a matmul or a NaN in the weights later.
numpy arrays and tensors are both accepted; float arrays become float32, images must stay uint8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

STATE_KEY = "state"
TRANSITION_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")

Observation = Tensor | np.ndarray | Mapping[str, Tensor | np.ndarray]


@dataclass(frozen=True)
class ObsSpec:
    """The per-sample layout of an observation: a flat float "state" and/or uint8 (H, W, 3) images."""

    state_dim: int | None  # length of the "state" vector; None when the agent uses images only
    image_shapes: tuple[tuple[str, tuple[int, int, int]], ...]  # (camera key, (H, W, 3)) in encoder order
    is_dict: bool  # whether observations come as a dict (else a bare state tensor)

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.image_shapes)

    @classmethod
    def from_example(cls, observations: Observation, image_keys: Sequence[str] = ()) -> ObsSpec:
        """Read the layout from an example, batched ((B, D), (B, H, W, 3)) or not ((D,), (H, W, 3))."""
        if not isinstance(observations, Mapping):
            if image_keys:
                raise ValueError(f"image_keys {list(image_keys)} need dict observations, got a bare array")
            return cls(
                state_dim=_example_state_dim(observations, "observations"), image_shapes=(), is_dict=False
            )
        state_dim = None
        if STATE_KEY in observations:
            state_dim = _example_state_dim(observations[STATE_KEY], f"observations['{STATE_KEY}']")
        shapes = []
        for key in image_keys:
            if key not in observations:
                raise ValueError(
                    f"image key {key!r} is not in the example observations (keys: {sorted(observations)})"
                )
            shape = tuple(observations[key].shape)
            shape = shape[1:] if len(shape) == 4 else shape
            if len(shape) != 3 or shape[-1] != 3:
                raise ValueError(
                    f"observations[{key!r}] must be (H, W, 3) or (B, H, W, 3) images, got shape {tuple(observations[key].shape)}"
                )
            shapes.append((key, shape))
        if state_dim is None and not shapes:
            raise ValueError(
                f"observations need a {STATE_KEY!r} entry or image_keys; got keys {sorted(observations)}"
            )
        return cls(state_dim=state_dim, image_shapes=tuple(shapes), is_dict=True)

    def to_json(self) -> str:
        return json.dumps(
            {"state_dim": self.state_dim, "image_shapes": self.image_shapes, "is_dict": self.is_dict}
        )

    @classmethod
    def from_json(cls, text: str) -> ObsSpec:
        data = json.loads(text)
        shapes = tuple((key, tuple(shape)) for key, shape in data["image_shapes"])
        return cls(state_dim=data["state_dim"], image_shapes=shapes, is_dict=data["is_dict"])


def _example_state_dim(state: Any, name: str) -> int:
    shape = tuple(state.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"{name} must be a (D,) or (B, D) state vector, got shape {shape}")
    return shape[-1]


def to_tensor(
    value: Any, device: torch.device, name: str, dtype: torch.dtype | None = torch.float32
) -> Tensor:
    """numpy or tensor -> tensor on `device`; `dtype=None` keeps the dtype (images)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a numeric array, got numpy dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if value.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {value.dtype}")
    return value.to(device=device, dtype=dtype if dtype is not None else value.dtype)


def prepare_obs(
    obs: Observation, spec: ObsSpec, device: torch.device, name: str = "observations"
) -> tuple[dict[str, Tensor], bool]:
    """Check `obs` against `spec`; return a dict of batched tensors and whether the input was unbatched."""
    if spec.is_dict and not isinstance(obs, Mapping):
        raise ValueError(f"{name} must be a dict with keys {_keys(spec)}, got {type(obs).__name__}")
    if not isinstance(obs, Mapping):
        obs = {STATE_KEY: obs}
    out: dict[str, Tensor] = {}
    unbatched: bool | None = None
    batch_size: int | None = None
    expected: list[tuple[str, tuple[int, ...]]] = list(spec.image_shapes)
    if spec.state_dim is not None:
        expected.append((STATE_KEY, (spec.state_dim,)))
    for key, shape in expected:
        if key not in obs:
            raise ValueError(f"{name} is missing key {key!r}; expected keys {_keys(spec)}")
        label = f"{name}[{key!r}]"
        is_image = key != STATE_KEY
        value = to_tensor(obs[key], device, label, dtype=None if is_image else torch.float32)
        if is_image and value.dtype != torch.uint8:
            raise ValueError(f"{label} must be uint8 images, got dtype {value.dtype}")
        this_unbatched = value.dim() == len(shape)
        if tuple(value.shape[-len(shape) :]) != shape or value.dim() not in (len(shape), len(shape) + 1):
            raise ValueError(
                f"{label} has shape {tuple(value.shape)}, expected {shape} or (B, {', '.join(map(str, shape))})"
            )
        if this_unbatched:
            value = value.unsqueeze(0)
        if unbatched is not None and (this_unbatched != unbatched or value.shape[0] != batch_size):
            raise ValueError(
                f"{label} has batch shape {tuple(value.shape[:1])}, other keys have {batch_size}"
            )
        unbatched, batch_size = this_unbatched, value.shape[0]
        out[key] = value
    return out, bool(unbatched)


def prepare_batch(
    batch: Mapping[str, Any],
    spec: ObsSpec,
    action_dim: int,
    device: torch.device,
    keys: Sequence[str] = TRANSITION_KEYS,
    check_finite: bool = True,
) -> dict[str, Any]:
    """Validate a training batch (SERL's dict layout) and move it to `device` as float32 / uint8 tensors.

    Keys not in `keys` (e.g. "dones") are ignored. `check_finite` costs one host sync per call.
    """
    if not isinstance(batch, Mapping):
        raise ValueError(f"batch must be a dict with keys {list(keys)}, got {type(batch).__name__}")
    for key in keys:
        if key not in batch:
            raise ValueError(f"batch is missing key {key!r}; expected keys {list(keys)}")
    out: dict[str, Any] = {}
    obs, unbatched = prepare_obs(batch["observations"], spec, device, "batch['observations']")
    if unbatched:
        raise ValueError("batch['observations'] must have a batch dimension")
    size = next(iter(obs.values())).shape[0]
    out["observations"] = obs
    expected_shapes = {"actions": (size, action_dim), "rewards": (size,), "masks": (size,)}
    for key in keys:
        if key == "next_observations":
            next_obs, _ = prepare_obs(batch[key], spec, device, f"batch[{key!r}]")
            if next(iter(next_obs.values())).shape[0] != size:
                raise ValueError(
                    f"batch[{key!r}] has batch size {next(iter(next_obs.values())).shape[0]}, expected {size}"
                )
            out[key] = next_obs
        elif key in expected_shapes:
            value = to_tensor(batch[key], device, f"batch[{key!r}]")
            if tuple(value.shape) != expected_shapes[key]:
                raise ValueError(
                    f"batch[{key!r}] has shape {tuple(value.shape)}, expected {expected_shapes[key]}"
                )
            out[key] = value
    if check_finite:
        _check_finite(out)
    return out


def _check_finite(batch: dict[str, Any]) -> None:
    """One host sync for the whole batch; only on failure is each key inspected to name the culprit."""
    named = [(f"batch[{key!r}]", value) for key, value in batch.items() if isinstance(value, Tensor)]
    for key, obs in batch.items():
        if isinstance(obs, dict) and STATE_KEY in obs:
            named.append((f"batch[{key!r}][{STATE_KEY!r}]", obs[STATE_KEY]))
    finite = torch.stack([torch.isfinite(value).all() for _, value in named])
    if bool(finite.all()):
        return
    bad = [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]
    raise ValueError(f"{', '.join(bad)} contains NaN or inf")


def _keys(spec: ObsSpec) -> list[str]:
    return [*spec.image_keys, *([STATE_KEY] if spec.state_dim is not None else [])]


def split_batch(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """Split every tensor of a prepared batch into `parts` equal minibatches along dim 0 (views, no copy)."""
    size = (
        batch["actions"].shape[0]
        if "actions" in batch
        else next(iter(batch["observations"].values())).shape[0]
    )
    if size % parts:
        raise ValueError(f"batch size {size} is not divisible by utd_ratio={parts}")
    step = size // parts
    return [_slice(batch, slice(i * step, (i + 1) * step)) for i in range(parts)]


def _slice(value: Any, index: slice) -> Any:
    if isinstance(value, dict):
        return {key: _slice(item, index) for key, item in value.items()}
    return value[index]


def action_dim_of(actions: Tensor | np.ndarray) -> int:
    """Action size from an example action, batched (B, A) or not (A,)."""
    shape = tuple(actions.shape)
    if len(shape) not in (1, 2) or shape[-1] < 1:
        raise ValueError(f"actions must be an (A,) or (B, A) example, got shape {shape}")
    return shape[-1]


class UpdateInfo(Mapping[str, float]):
    """An update's scalars as Python floats, read from the device on first access (one sync, or none)."""

    def __init__(self, values: Mapping[str, Tensor]):
        self._keys = tuple(values)
        self._packed = torch.stack([value.detach().float() for value in values.values()])
        self._floats: dict[str, float] | None = None

    def _values(self) -> dict[str, float]:
        if self._floats is None:
            self._floats = dict(zip(self._keys, self._packed.tolist(), strict=True))
        return self._floats

    def __getitem__(self, key: str) -> float:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"UpdateInfo({self._values()})"


def format_actions(actions: Tensor, observations: Observation, unbatched: bool) -> Tensor | np.ndarray:
    """Drop the batch dim added for an unbatched input; numpy out when the input was numpy."""
    if unbatched:
        actions = actions[0]
    values = observations.values() if isinstance(observations, Mapping) else [observations]
    if any(isinstance(value, np.ndarray) for value in values):
        return actions.cpu().numpy()
    return actions

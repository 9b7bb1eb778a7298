"""What a transition must look like for a given pair of Gymnasium spaces, and its validation.

Validation happens before anything is written, so a bad transition raises a ``ValueError`` that names
the key and the expected shape and leaves the buffer untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

TRANSITION_KEYS = ("observations", "actions", "rewards", "masks", "dones", "next_observations")
# Optional per-transition float: HIL-SERL's gripper-toggle cost (GripperPenaltyWrapper's info), which the
# grasp critic adds to its reward. Stored only by layouts built with grasp_penalty=True.
GRASP_PENALTY = "grasp_penalty"


@dataclass(frozen=True)
class Field:
    """One stored array: a per-sample shape and dtype."""

    shape: tuple[int, ...]  # shape of one sample (no leading batch axis)
    dtype: np.dtype  # storage dtype; sampled tensors have the matching torch dtype
    image: bool  # uint8 (H, W, 3) camera frame: dtype must match exactly, never cast


def _box_field(space: Any, where: str) -> Field:
    if not isinstance(space, spaces.Box):
        raise ValueError(f"{where} is {type(space).__name__}, expected a gymnasium.spaces.Box")
    shape = tuple(int(n) for n in space.shape)
    dtype = np.dtype(space.dtype)
    return Field(shape, dtype, image=dtype == np.uint8 and len(shape) == 3 and shape[-1] == 3)


def to_numpy(x: Any) -> np.ndarray:
    """numpy view of array-likes and (CPU or GPU) torch tensors."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class TransitionLayout:
    """Fields of a transition for an observation space (``Box`` or flat ``Dict`` of ``Box``) and a ``Box`` action space.

    With ``grasp_penalty`` every transition also carries a float ``grasp_penalty`` (required on insert, so a
    learned gripper never trains on silently missing costs); without it the layout is the original six keys.
    """

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, grasp_penalty: bool = False
    ) -> None:
        if isinstance(observation_space, spaces.Dict):
            self.obs_is_dict = True
            self.obs = {
                k: _box_field(s, f"observation_space[{k!r}]") for k, s in observation_space.spaces.items()
            }
        elif isinstance(observation_space, spaces.Box):
            self.obs_is_dict = False
            self.obs = {"": _box_field(observation_space, "observation_space")}
        else:
            raise ValueError(
                f"observation_space is {type(observation_space).__name__}, expected a gymnasium.spaces.Box "
                "or a Dict of Box spaces"
            )
        self.action = _box_field(action_space, "action_space")
        # Per-transition scalars, stored next to the action.
        self.scalars = {
            "rewards": Field((), np.dtype(np.float32), image=False),
            "masks": Field((), np.dtype(np.float32), image=False),
            "dones": Field((), np.dtype(bool), image=False),
        }
        if grasp_penalty:
            self.scalars[GRASP_PENALTY] = Field((), np.dtype(np.float32), image=False)
        self.keys = TRANSITION_KEYS + ((GRASP_PENALTY,) if grasp_penalty else ())

    @property
    def grasp_penalty(self) -> bool:
        """Whether transitions carry ``grasp_penalty``."""
        return GRASP_PENALTY in self.scalars

    def _check(self, x: Any, name: str, field: Field, lead: tuple[int, ...]) -> np.ndarray:
        arr = to_numpy(x)
        expected = lead + field.shape
        if field.shape == () and arr.shape == lead + (1,):
            arr = arr.reshape(expected)  # a 1-element reward/mask/done is a scalar
        if arr.shape != expected:
            raise ValueError(f"{name} has shape {arr.shape}, expected {expected}")
        if field.image:
            if arr.dtype != field.dtype:
                raise ValueError(f"{name} has dtype {arr.dtype}, expected uint8 images of shape {expected}")
            return arr
        if field.dtype == bool and arr.dtype != bool:
            if not np.isin(arr, (0, 1)).all():
                raise ValueError(f"{name} must be bool or 0/1 values of shape {expected}")
        try:
            arr = arr.astype(field.dtype, copy=False)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{name} has dtype {arr.dtype}, expected {field.dtype} of shape {expected}"
            ) from err
        if np.issubdtype(field.dtype, np.floating) and not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf, expected finite values of shape {expected}")
        return arr

    def _check_obs(self, obs: Any, what: str, lead: tuple[int, ...]) -> dict[str, np.ndarray]:
        if not self.obs_is_dict:
            if isinstance(obs, Mapping):
                raise ValueError(f"{what} is a dict, expected an array of shape {lead + self.obs[''].shape}")
            return {"": self._check(obs, what, self.obs[""], lead)}
        keys = list(self.obs)
        if not isinstance(obs, Mapping):
            raise ValueError(f"{what} is {type(obs).__name__}, expected a dict with keys {keys}")
        for k in keys:
            if k not in obs:
                raise ValueError(f"{what} is missing key {k!r}; expected keys {keys}")
        for k in obs:
            if k not in self.obs:
                raise ValueError(f"{what} has unknown key {k!r}; expected keys {keys}")
        return {k: self._check(obs[k], f"{what}[{k!r}]", f, lead) for k, f in self.obs.items()}

    def check(self, transition: Mapping[str, Any], batch: bool = False) -> dict[str, Any]:
        """Validated numpy arrays of one transition (or of N stacked ones, leading axis N, when ``batch``)."""
        keys = list(self.keys)
        if not isinstance(transition, Mapping):
            raise ValueError(f"transition is {type(transition).__name__}, expected a dict with keys {keys}")
        for k in keys:
            if k not in transition:
                raise ValueError(f"transition is missing key {k!r}; expected keys {keys}")
        for k in transition:
            if k not in keys:
                raise ValueError(f"transition has unknown key {k!r}; expected keys {keys}")
        lead: tuple[int, ...] = ()
        if batch:
            rewards = to_numpy(transition["rewards"])
            if rewards.ndim != 1:
                raise ValueError(
                    f"rewards has shape {rewards.shape}, expected (N,) for a batch of N transitions"
                )
            lead = rewards.shape
        out: dict[str, Any] = {
            "observations": self._check_obs(transition["observations"], "observations", lead),
            "next_observations": self._check_obs(transition["next_observations"], "next_observations", lead),
            "actions": self._check(transition["actions"], "actions", self.action, lead),
        }
        for k, f in self.scalars.items():
            out[k] = self._check(transition[k], k, f, lead)
        bad = np.flatnonzero((out["masks"] == 0) & ~out["dones"])
        if bad.size:
            where = f" (row {int(bad[0])})" if batch else ""
            raise ValueError(
                f"masks=0 (terminated) requires dones=True{where}; dones marks every episode end"
            )
        return out

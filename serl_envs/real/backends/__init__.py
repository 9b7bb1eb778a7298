"""Robot-server backends, imported lazily by name so hardware SDKs load only when their backend is chosen.

A backend module `serl_envs.real.backends.<name>` provides:

- `add_arguments(parser: argparse.ArgumentParser) -> None`: its own command-line options;
- `create(args: argparse.Namespace, station: StationConfig) -> BaseRobotServer`: the (not yet connected) arm
  with its gripper; `args` holds the server's options too (`args.task`, ...). Hardware SDKs are imported inside
  `create`, with an error that names the extra (`pip install "serl-torch[franka]"`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from serl_envs.real.backends.base import (
    ArmLimits,
    ArmReading,
    BaseGripperServer,
    BaseRobotServer,
    FaultError,
    MotionError,
)

BACKENDS = {"twin": None, "franka": "franka", "piper": "piper"}  # name -> pip extra (None: core install)


def load_backend(name: str) -> ModuleType:
    """Import a backend module by name, with an error that says what is missing."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}")
    module_name = f"{__name__}.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ImportError(
            f"backend {name!r} is not available in this install: module {module_name} is missing"
        ) from err


__all__ = [
    "BACKENDS",
    "ArmLimits",
    "ArmReading",
    "BaseGripperServer",
    "BaseRobotServer",
    "FaultError",
    "MotionError",
    "load_backend",
]

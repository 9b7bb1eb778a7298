"""One file per task; `TASKS` maps the registry name to the class."""

from serl_envs.tasks.peg_insert import PegInsert
from serl_envs.tasks.pick_cube import PickCube

TASKS = {cls.name: cls for cls in (PickCube, PegInsert)}

__all__ = ["TASKS", "PegInsert", "PickCube"]

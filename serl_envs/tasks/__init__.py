"""One file per task; `TASKS` maps the registry name to the class."""

from serl_envs.tasks.bin_relocate import BinRelocate
from serl_envs.tasks.cable_route import CableRoute
from serl_envs.tasks.drawer_open import DrawerOpen
from serl_envs.tasks.pcb_insert import PCBInsert
from serl_envs.tasks.peg_insert import PegInsert
from serl_envs.tasks.pick_cube import PickCube

TASKS = {cls.name: cls for cls in (PickCube, PegInsert, PCBInsert, BinRelocate, CableRoute, DrawerOpen)}

__all__ = ["TASKS", "BinRelocate", "CableRoute", "DrawerOpen", "PCBInsert", "PegInsert", "PickCube"]

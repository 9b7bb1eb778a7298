"""Lazy offscreen rendering: no OpenGL context exists until the first image is asked for.

State-only envs therefore never touch OpenGL (they run where no GL platform is installed).
"""

from __future__ import annotations

import mujoco
import numpy as np


class LazyRenderer:
    """Renders named cameras of one model at a fixed size; the GL context is created on first use."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        self._model, self.height, self.width = model, height, width
        self._renderer: mujoco.Renderer | None = None

    @property
    def created(self) -> bool:
        return self._renderer is not None

    def render(self, data: mujoco.MjData, camera: int | str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self._model, self.height, self.width)
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render()  # a fresh array per call

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

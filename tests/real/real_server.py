"""Robot servers for the tests: the real CLI (`python -m serl_envs.real.server --backend twin`) as a subprocess on a
free 127.0.0.1 port, started and stopped by the tests; and a station file matching the twin's board."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

STARTUP_TIMEOUT = 60.0
# A PegInsert station away from the sim task's default pose: board centre (0.53, 0.04), turned by 0.3 rad.
TARGET = {"position": [0.53, 0.04, 0.06], "quat": [0.0, 0.98877108, 0.14943813, 0.0]}
RESET = {"position": [0.53, 0.04, 0.16], "quat": [0.0, 1.0, 0.0, 0.0]}
BOX = {"low": [0.43, -0.06, 0.055], "high": [0.63, 0.14, 0.2], "rot_low": [-0.1, -0.1, -0.7], "rot_high": [0.1, 0.1, 0.7]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`serl robot-server` in a subprocess; `url` once /health answers."""

    def __init__(self, *args: str, token: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [sys.executable, "-m", "serl_envs.real.server", "--backend", "twin", "--port", str(self.port), *args]
        if token is not None:
            cmd += ["--token", token]
        env = {**os.environ, "MUJOCO_GL": "egl"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._wait_ready()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"robot server exited with {self.proc.returncode}:\n{self.proc.stdout.read()}")
            try:
                if httpx.get(self.url + "/health", headers=self.headers, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"robot server on {self.url} did not come up within {STARTUP_TIMEOUT} s")

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, headers=kwargs.pop("headers", self.headers), timeout=10.0, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, headers=kwargs.pop("headers", self.headers), timeout=30.0, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def write_station(path: Path, **overrides) -> Path:
    data = {"target_pose": TARGET, "reset_pose": RESET, "safety_box": BOX, **overrides}
    path.write_text(yaml.safe_dump(data))
    return path

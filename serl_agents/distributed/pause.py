"""Pausing a whole asynchronous run from outside it: `serl pause RUN_DIR`.

Files in the run directory (on the machine where `serl train --async` runs):
- `async_run.json`: written when a run starts (host, pid), removed when it ends. `serl pause` refuses a directory
  without one, so a typo never leaves a request behind for some later run.
- `pause.request`: the request. The launcher sees it within a second, stops the actors (robots hold), lets the
  learner store what it accepted and write a checkpoint (agent, optimizer, replay and demo buffers, counters),
  shuts Ray down, and removes the request.
- `paused.json`: the outcome: the step, the checkpoint folder and the command that resumes the run.

SIGTERM to `serl train --async` pauses the same way (a job scheduler's preemption); Ctrl-C stops within seconds
without a new checkpoint (the last periodic one stays).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

ACTIVE = "async_run.json"
REQUEST = "pause.request"
PAUSED = "paused.json"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def claim_run_dir(run_dir: Path) -> None:
    """Mark `run_dir` as having an active run (refusing one that another live process on this host holds) and
    clear a stale request or outcome."""
    run_dir.mkdir(parents=True, exist_ok=True)
    marker = run_dir / ACTIVE
    if marker.exists():
        holder = json.loads(marker.read_text())
        if holder.get("host") == socket.gethostname() and holder.get("pid") != os.getpid() and _alive(holder["pid"]):
            raise ValueError(f"another asynchronous run (pid {holder['pid']}) is active in {run_dir}; "
                             "pause it first (serl pause) or choose another --out")
    for name in (REQUEST, PAUSED):
        (run_dir / name).unlink(missing_ok=True)
    write_json_atomic(marker, {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()})


def release_run_dir(run_dir: Path) -> None:
    (run_dir / REQUEST).unlink(missing_ok=True)
    (run_dir / ACTIVE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pause_requested(run_dir: Path) -> bool:
    return (run_dir / REQUEST).exists()


def request_pause(run_dir: str | os.PathLike) -> None:
    """Ask the run in `run_dir` to pause (returns at once; `wait_paused` waits for the outcome)."""
    run_dir = Path(run_dir)
    if not (run_dir / ACTIVE).exists():
        raise ValueError(f"no asynchronous run is active in {run_dir} (no {ACTIVE}); "
                         "pass the --out directory of a running `serl train --async`")
    (run_dir / REQUEST).write_text(json.dumps({"requested": time.time()}))


def wait_paused(run_dir: str | os.PathLike, timeout_s: float) -> dict[str, Any]:
    """The pause outcome (`paused.json`) once the run has ended; TimeoutError after `timeout_s`."""
    run_dir = Path(run_dir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not (run_dir / ACTIVE).exists():
            if (run_dir / PAUSED).exists():
                return json.loads((run_dir / PAUSED).read_text())
            raise RuntimeError(f"the run in {run_dir} ended without pausing (it finished or failed); "
                               "see its output")
        time.sleep(0.2)
    raise TimeoutError(f"the run in {run_dir} has not paused within {timeout_s:g} s; the request stays in "
                       f"{run_dir / REQUEST}")


def resume_command(cfg, acfg) -> str:
    """The `serl train --async` command line that continues a run: its non-default flags plus --resume true."""
    words = ["serl", "train", "--async"]
    for config in (cfg, acfg):
        for f in fields(config):
            value = getattr(config, f.name)
            default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
            if f.name == "resume" or value == default:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, dict):
                text = json.dumps(value)
            else:
                text = str(value)
            words += ["--" + f.name.replace("_", "-"), text]
    words += ["--resume", "true"]
    return shlex.join(words)


def main_pause(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="serl pause", description="Pause a running `serl train --async`: "
                                     "checkpoint everything (agent, optimizer, buffers) and stop; resume later.")
    parser.add_argument("run_dir", type=Path, help="the run's --out directory")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the checkpoint")
    parser.add_argument("--no-wait", action="store_true", help="only place the request")
    args = parser.parse_args(argv)
    try:
        request_pause(args.run_dir)
    except ValueError as err:
        parser.error(str(err))
    if args.no_wait:
        print(f"pause requested in {args.run_dir}")
        return 0
    try:
        outcome = wait_paused(args.run_dir, args.timeout)
    except (TimeoutError, RuntimeError) as err:
        print(f"serl pause: {err}", file=sys.stderr)
        return 1
    print(f"paused at step {outcome['step']} (checkpoint {outcome['checkpoint']})\nresume with:\n  {outcome['resume']}")
    return 0

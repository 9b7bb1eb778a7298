"""The `serl robot-server` and `serl record-pose` commands (also `python -m serl_envs.real.server ...`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from serl_envs.real import REAL_ARMS
from serl_envs.real.backends import BACKENDS, load_backend
from serl_envs.real.config import DEFAULT_URL, read_station_file, station_config
from serl_envs.real.station import station_defaults
from serl_envs.tasks import TASKS
from serl_envs.transforms import quat_conj, quat_mul, rotvec_from_quat, yaw_from_quat

TOKEN_ENV = "SERL_ROBOT_TOKEN"
DEFAULT_ARMS = {"twin": "panda", "franka": "panda", "piper": "piper"}  # a hardware backend drives only its own arm


def main_robot_server(argv: list[str] | None = None) -> None:
    """serl robot-server --backend twin|franka|piper [--arm panda|piper] [--host 127.0.0.1] [--port 5000] [--token T]
    [--station FILE]"""
    parser = argparse.ArgumentParser(
        prog="serl robot-server", add_help=False,
        description="Serve one robot arm over HTTP (FastAPI). Binds 127.0.0.1 unless --host says otherwise.",
    )
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="twin")
    parser.add_argument("--arm", choices=sorted(REAL_ARMS.values()), default=None,
                        help="the arm: which sim arm the twin runs (default panda); a hardware backend drives its own "
                             "(franka: panda, piper: piper). Picks the station defaults (safety box, reset pose)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                        help=f"bearer token required on every route (default: ${TOKEN_ENV}; none: no auth)")
    parser.add_argument("--station", type=Path, default=None,
                        help="station config (.yaml/.json): safety box, limits, reset/target poses, compliance")
    parser.add_argument("--task", default="PegInsert", choices=sorted(TASKS),
                        help="task whose defaults complete the station config (and that the twin simulates)")
    parser.add_argument("--watchdog", type=float, default=None,
                        help="s without a command before the arm holds its pose (default: the station's)")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    known, _ = parser.parse_known_args(argv)
    try:
        backend = load_backend(known.backend)
    except ImportError as err:
        parser.error(str(err))
    backend.add_arguments(parser)
    parser.add_argument("-h", "--help", action="help", help="show this help (with the chosen backend's options)")
    args = parser.parse_args(argv)
    if args.backend != "twin" and args.arm not in (None, DEFAULT_ARMS[args.backend]):
        parser.error(f"--backend {args.backend} drives a {DEFAULT_ARMS[args.backend]}, not --arm {args.arm}")
    if args.backend != "twin" and args.station is None:
        parser.error(f"--backend {args.backend} needs --station FILE: a real arm is never served without its safety box")
    args.arm = args.arm or DEFAULT_ARMS[args.backend]
    station = station_config(station_defaults(args.task, args.arm), args.station)
    if args.watchdog is not None:
        station = dataclasses.replace(station, limits=dataclasses.replace(station.limits, watchdog_timeout=args.watchdog))

    os.environ.setdefault("MUJOCO_GL", "egl")  # the twin renders headless
    from serl_envs.real.server import RobotService, serve

    service = RobotService(backend.create(args, station), station)
    serve(service, args.host, args.port, args.token, args.log_level)


def main_record_pose(argv: list[str] | None = None) -> None:
    """serl record-pose --robot-url URL [--station FILE --key target_pose]: print (and save) the current TCP pose."""
    parser = argparse.ArgumentParser(
        prog="serl record-pose",
        description="Print the robot's current TCP pose (x y z and quaternion w x y z) for a station config; with "
                    "--station, write it under --key into that YAML/JSON file (other keys are kept).",
    )
    parser.add_argument("--robot-url", default=DEFAULT_URL)
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV))
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--station", type=Path, default=None, help="station file to update (created if missing)")
    parser.add_argument("--key", default="target_pose", choices=["target_pose", "reset_pose"])
    args = parser.parse_args(argv)

    from serl_envs.real.client import RobotClient

    client = RobotClient(args.robot_url, args.token, args.timeout)
    try:
        state = client.state()
    finally:
        client.close()
    pose = np.asarray(state["cartesian_position"], float)
    position, quat = [round(float(v), 5) for v in pose[:3]], [round(float(v), 5) for v in pose[3:]]
    tilt = rotvec_from_quat(quat_mul(pose[3:], quat_conj(np.array([0.0, 1.0, 0.0, 0.0]))))
    print(f"position (m):        {position}")
    print(f"quaternion (w x y z): {quat}")
    print(f"yaw (deg): {np.degrees(yaw_from_quat(pose[3:])):.2f}   rotation from pointing down (rad): {np.round(tilt, 4).tolist()}")
    if state["errors"]:
        print(f"warning: the arm reports faults {state['errors']}", file=sys.stderr)
    entry = {"position": position, "quat": quat}
    print(f"{args.key}: {json.dumps(entry)}")
    if args.station is not None:
        write_pose(args.station, args.key, entry)
        print(f"wrote {args.key} to {args.station}")


def write_pose(path: Path, key: str, entry: dict) -> None:
    """Set one key of a station file, keeping the others (YAML comments are not kept)."""
    data = read_station_file(path) if path.exists() else {}
    data[key] = entry
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    else:
        raise ValueError(f"station file {path} must end in .yaml, .yml or .json")
    path.write_text(text)

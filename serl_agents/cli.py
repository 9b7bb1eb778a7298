"""The `serl` command: one entry point for every task (no per-task launcher scripts)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def _train(argv: list[str]) -> int:
    from serl_agents.config import PRESETS, TrainConfig, add_dataclass_flags, config_from_args
    from serl_agents.distributed.config import add_async_flags, async_config_from_args

    parser = argparse.ArgumentParser(prog="serl train", description="Train an agent on a registered task.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a published recipe; explicit flags override its values")
    parser.add_argument("--print-config", action="store_true", help="print every value in effect and exit")
    add_dataclass_flags(parser, TrainConfig)
    add_async_flags(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, args.preset)
        async_cfg = async_config_from_args(args)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.print_config:
        print(cfg.to_json())
        if async_cfg is not None:
            print(async_cfg.to_json())
        return 0
    if async_cfg is not None:
        from serl_agents.distributed.launcher import main_train_async

        return main_train_async(cfg, async_cfg)
    from serl_agents.train import Trainer

    trainer = Trainer(cfg)
    result = trainer.train()
    if result is not None and trainer.stop_reason is None:
        print(f"final eval: success {result.success_rate:.0%} over {result.episodes} episodes, "
              f"return {result.mean_return:.2f}; run in {cfg.out}")
    return 0


def _find_agent_file(path: Path) -> Path:
    """A run dir, a checkpoint folder or an agent.pt file -> the agent file."""
    if path.is_file():
        return path
    pointer = path / "checkpoints" / "latest"
    if pointer.exists():
        return path / "checkpoints" / pointer.read_text().strip() / "agent.pt"
    if (path / "agent.pt").exists():
        return path / "agent.pt"
    raise FileNotFoundError(f"no checkpoint at {path}: expected a run directory, a checkpoint folder or an agent.pt")


def load_agent(agent_file: Path, device: str = "cpu"):
    """Load any bundled agent from its checkpoint (the file names its class)."""
    import torch

    import serl_agents

    header = torch.load(agent_file, map_location="cpu", weights_only=True)
    cls = getattr(serl_agents, str(header.get("agent")), None)
    if cls is None:
        raise ValueError(f"{agent_file} holds an unknown agent class {header.get('agent')!r}")
    return cls.load(agent_file, device=device)


def _eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="serl eval", description="Evaluate a checkpoint: success rate and a video.")
    parser.add_argument("--checkpoint", type=Path, required=True, help="run directory, checkpoint folder or agent.pt")
    parser.add_argument("--env", default=None, help="env ID (default: the run's config.json)")
    parser.add_argument("--env-kwargs", type=json.loads, default=None,
                        help="JSON gym.make kwargs, e.g. '{\"image_size\": [64, 64]}' (default: the run's config.json)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", type=Path, default=None, help="mp4 of the first episode")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from serl_agents.config import load_run_config
    from serl_agents.evaluate import evaluate
    from serl_agents.train import make_env

    agent_file = _find_agent_file(args.checkpoint)
    env_id, env_kwargs = args.env, args.env_kwargs
    run_dir = next((parent for parent in agent_file.parents if (parent / "config.json").exists()), None)
    if run_dir is not None and (env_id is None or env_kwargs is None):
        run_config = load_run_config(run_dir)
        if env_id is None:
            env_id = run_config.env
        if env_kwargs is None and env_id == run_config.env:  # the run's cameras (image size) for its own env
            env_kwargs = run_config.env_kwargs
    if env_id is None:
        parser.error("--env is required when the checkpoint is not inside a run directory")
    agent = load_agent(agent_file, args.device)
    env = make_env(env_id, render=args.video is not None, env_kwargs=env_kwargs)
    from serl_agents.grasp import GraspSACAgent, GripperHoldWrapper

    if isinstance(agent, GraspSACAgent):  # its "stay" repeats the env-side held gripper command
        env = GripperHoldWrapper(env)
    result = evaluate(lambda o: agent.sample_actions(o, deterministic=True), env, args.episodes, args.seed, args.video)
    print(f"{env_id}: success {result.success_rate:.0%} over {result.episodes} episodes, "
          f"mean return {result.mean_return:.2f}, mean length {result.mean_length:.1f}")
    if args.video:
        print(f"video: {args.video}")
    return 0


def _pause(argv: list[str]) -> int:
    from serl_agents.distributed.pause import main_pause

    return main_pause(argv)


def _record_demos(argv: list[str]) -> int:
    from serl_envs.record import main_record_demos

    return main_record_demos(argv)


def _robot_server(argv: list[str]) -> int:
    from serl_envs.real.cli import main_robot_server

    return main_robot_server(argv)


def _record_pose(argv: list[str]) -> int:
    from serl_envs.real.cli import main_record_pose

    return main_record_pose(argv)


def _train_classifier(argv: list[str]) -> int:
    from serl_agents.classifier import main_train_classifier

    return main_train_classifier(argv) or 0


def _bench(argv: list[str]) -> int:
    from serl_agents.bench import main_bench  # imports stable-baselines3 (the [sb3] extra) only here

    return main_bench(argv) or 0


COMMANDS = {
    "train": (_train, "train an agent (SAC, DrQ, BC) on a registered task"),
    "eval": (_eval, "evaluate a checkpoint"),
    "pause": (_pause, "pause a running `serl train --async`: checkpoint agent and buffers, stop; --resume continues"),
    "train-classifier": (_train_classifier, "train a success classifier (learned reward) on positive/negative datasets"),
    "record-demos": (_record_demos, "record demonstrations (keyboard, spacemouse, gamepad, expert) as a Minari dataset"),
    "bench": (_bench, "benchmark any SB3 algorithm or bundled agent on a task over seeds; --compare runs"),
    "robot-server": (_robot_server, "serve a robot (twin, franka, piper) over HTTP for the *Real-v0 IDs"),
    "record-pose": (_record_pose, "print/save the current TCP pose of a robot server (to set target and reset poses)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<18} {helptext}" for name, (_, helptext) in COMMANDS.items())
        print(f"usage: serl <command> [options]\n\ncommands:\n{lines}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nserl: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    command, _ = COMMANDS[argv[0]]
    return command(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())

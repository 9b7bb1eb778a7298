"""Learned rewards measured against the sim's ground truth (issue 9); figures in benchmarks/README_vice.md.

    python -m benchmarks.reward_classifier classifier    # target: precision and recall >= 0.95 on held-out rollouts
    python -m benchmarks.reward_classifier vice          # DrQ + VICE reward vs DrQ + true reward (target >= 70%)
    python -m benchmarks.reward_classifier vice --steps 4000 --runs drq-vice --out bench/vice
    python -m benchmarks.reward_classifier vice-reward   # VICE's online classifier vs ground truth, no RL (minutes)

`classifier`: a `SuccessClassifier` ("small" encoder) trained on at most 200 positive and 1000 negative frames of
SerlFrankaPickCubeVision-v0: positives are frames of scripted-expert episodes whose `info["is_success"]` is set (cube
lifted >= 10 cm), spread over 50 episodes (cube placements); negatives are the expert's frames before success (45%
from the 12 frames of grasp and lift, the hard ones; 15% reaching) and frames of 40 uniform-random episodes (40%).
It reads both cameras by default (`--cameras front` reaches the target too). Validation (printed during training)
uses 10 other episodes; the figures are against `info["is_success"]` on every frame of held-out seeded rollouts:
expert and random episodes (the target), and as a harder check expert episodes with noisy actions (near misses,
drops). Errors are broken down by the cube's true height. Writes <out>/classifier.json and <out>/clf.pt;
`--checkpoint clf.pt --test-offset N` re-scores a saved classifier on fresh seeds.

`vice`: `serl train` with the drq-cpu preset (`--preset serl-drq` for SERL's, ~80x the compute per env step) on
SerlFrankaPickCubeVision-v0 and 20 scripted-expert demos recorded with the preset's cameras (50/50
batches), once with `--reward vice --goal-examples <the demos>` (the agent never sees the env's reward: VICE
relabels every batch, demos included; the goal examples are the demos' success frames) and once with the env's
reward; eval success (ground truth) every 2000 steps, both curves in <out>/vice.png.

`vice-reward`: only VICE's classifier, updated online against the frames a DrQ+VICE run starts from (20 expert demos
and random-policy frames), its binary reward scored against the ground truth on held-out rollouts as it trains.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import serl_envs  # noqa: E402, F401
from serl_envs.experts import make_expert  # noqa: E402

ENV = "SerlFrankaPickCubeVision-v0"
Policy = Callable[[dict], np.ndarray]


def expert_policy(env: gym.Env, seed: int, noise: float = 0.0) -> Policy:
    """The scripted expert, optionally with Gaussian action noise of std `noise` (seeded)."""
    expert, rng = make_expert(env), np.random.default_rng(seed)
    if noise == 0.0:
        return expert
    return lambda obs: np.clip(expert(obs) + rng.normal(0.0, noise, env.action_space.shape), -1, 1).astype(np.float32)


def random_policy(env: gym.Env, seed: int, noise: float = 0.0) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)


@dataclass
class Rollouts:
    """Every frame of some episodes (the reset frame too), with the sim's ground truth about each."""

    frames: dict[str, np.ndarray]  # camera -> (N, H, W, 3)
    success: np.ndarray  # info["is_success"] of the frame
    lift: np.ndarray  # the cube's height above the table (m), for the error breakdown only
    to_success: np.ndarray  # frames until the episode's first success (1: the frame just before); 0 from it on
    episode: np.ndarray  # index of the frame's episode


def rollouts(env: gym.Env, make_policy, seeds, cameras, noise: float = 0.0) -> Rollouts:
    frames: dict[str, list] = {key: [] for key in cameras}
    success, lift, to_success, episode = [], [], [], []
    task, scene = env.unwrapped.task, env.unwrapped.scene
    for index, seed in enumerate(seeds):
        obs, info = env.reset(seed=int(seed))
        policy = make_policy(env, int(seed), noise)
        flags, done = [], False
        while True:
            for key in cameras:
                frames[key].append(obs[key])
            flags.append(bool(info["is_success"]))
            lift.append(task.lift(scene))
            if done:
                break
            obs, _, terminated, truncated, info = env.step(policy(obs))
            done = terminated or truncated
        first = flags.index(True) if True in flags else len(flags) + 1_000
        to_success += [max(first - t, 0) for t in range(len(flags))]
        success += flags
        episode += [index] * len(flags)
    return Rollouts({key: np.stack(value) for key, value in frames.items()}, np.array(success), np.array(lift),
                    np.array(to_success), np.array(episode))


def subset(frames: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[index] for key, value in frames.items()}


def pick(rng: np.random.Generator, candidates: np.ndarray, count: int) -> np.ndarray:
    return rng.choice(candidates, min(count, len(candidates)), replace=False)


def training_frames(expert: Rollouts, random: Rollouts, positives: int, negatives: int, rng: np.random.Generator):
    """At most `positives` success frames, spread evenly over the expert's episodes (cube placements matter more
    than frames), and at most `negatives` frames without success: 45% from the 12 expert frames just before success
    (grasp and lift: the hard ones), 15% earlier expert frames (reaching), 40% random-policy frames (the arm high
    with the gripper closed but no cube in it), each spread over the episodes."""
    episodes = int(expert.episode.max()) + 1
    per_episode = max(positives // episodes, 1)
    pos = np.concatenate([pick(rng, np.flatnonzero(expert.success & (expert.episode == e)), per_episode)
                          for e in range(episodes)])[:positives]
    hard = pick(rng, np.flatnonzero((expert.to_success >= 1) & (expert.to_success <= 12)), int(0.45 * negatives))
    approach = pick(rng, np.flatnonzero(expert.to_success > 12), int(0.15 * negatives))
    chosen_random = pick(rng, np.flatnonzero(~random.success), negatives - len(hard) - len(approach))
    negative_frames = {key: np.concatenate([expert.frames[key][hard], expert.frames[key][approach],
                                            random.frames[key][chosen_random]]) for key in expert.frames}
    counts = {"positives": len(pos), "negatives_grasp_and_lift": len(hard), "negatives_reaching": len(approach),
              "negatives_random": len(chosen_random), "expert_episodes": episodes}
    return subset(expert.frames, pos), negative_frames, counts


def labelled(rollouts: Rollouts) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return subset(rollouts.frames, rollouts.success), subset(rollouts.frames, ~rollouts.success)


def error_breakdown(probabilities: np.ndarray, rollouts: Rollouts) -> dict[str, int]:
    """Where the mistakes are, by the cube's true height: near the 10 cm threshold or far from it."""
    predicted, lift = probabilities >= 0.5, rollouts.lift
    false_pos, false_neg = predicted & ~rollouts.success, ~predicted & rollouts.success
    return {
        "false_positives_cube_on_table (<1 cm)": int(np.sum(false_pos & (lift < 0.01))),
        "false_positives_lifted_1_to_8_cm": int(np.sum(false_pos & (lift >= 0.01) & (lift < 0.08))),
        "false_positives_lifted_8_to_10_cm": int(np.sum(false_pos & (lift >= 0.08))),
        "false_negatives_lifted_10_to_12_cm": int(np.sum(false_neg & (lift < 0.12))),
        "false_negatives_lifted_over_12_cm": int(np.sum(false_neg & (lift >= 0.12))),
    }


def train_benchmark_classifier(args: argparse.Namespace, env: gym.Env, cameras: tuple[str, ...]):
    """The classifier of the target, trained on frames of seeds 0-49 (expert) and 10000-10039 (random)."""
    from serl_agents.classifier import ClassifierTrainConfig, train_classifier

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    expert = rollouts(env, expert_policy, range(args.expert_episodes), cameras)
    random = rollouts(env, random_policy, range(10_000, 10_000 + args.random_episodes), cameras)
    positives, negatives, counts = training_frames(expert, random, args.positives, args.negatives, rng)
    val_expert = rollouts(env, expert_policy, range(500, 505), cameras)
    val_random = rollouts(env, random_policy, range(15_000, 15_005), cameras)
    val_pos, val_neg = labelled(val_expert)
    validation = (val_pos, {key: np.concatenate([val_neg[key], val_random.frames[key]]) for key in cameras})
    print(f"training frames {counts}; validation: 5 other expert + 5 random episodes; cameras {cameras}; "
          f"collected in {time.perf_counter() - start:.0f} s")
    config = ClassifierTrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed, eval_every=250)
    start = time.perf_counter()
    classifier = train_classifier(positives, negatives, config, validation=validation, device=args.device)
    seconds = time.perf_counter() - start
    print(f"trained {args.steps} steps (batch {args.batch_size}) in {seconds / 60:.1f} min")
    args.out.mkdir(parents=True, exist_ok=True)
    classifier.save(args.out / "clf.pt")
    return classifier, {**counts, "steps": args.steps, "batch_size": args.batch_size, "seconds": round(seconds, 1),
                        "validation": classifier.metrics}


def run_classifier(args: argparse.Namespace) -> None:
    from serl_agents.classifier import SuccessClassifier, binary_metrics, predict_frames

    env = gym.make(ENV)
    if args.checkpoint is not None:
        classifier = SuccessClassifier.load(args.checkpoint, args.device)
        train_record = {"checkpoint": str(args.checkpoint)}
        cameras = tuple(classifier.image_shapes)
    else:
        cameras = tuple(args.cameras)
        classifier, train_record = train_benchmark_classifier(args, env, cameras)

    offset = args.test_offset
    held_out = {
        "expert": (expert_policy, range(1_000 + offset, 1_000 + offset + args.test_episodes), 0.0),
        "random": (random_policy, range(20_000 + offset, 20_000 + offset + args.test_episodes // 2), 0.0),
        "noisy expert (std 0.3)": (expert_policy, range(30_000 + offset, 30_000 + offset + args.test_episodes // 2),
                                   0.3),
    }
    results: dict[str, dict] = {}
    probabilities, labels = {}, {}
    for name, (make_policy, seeds, noise) in held_out.items():
        test = rollouts(env, make_policy, seeds, cameras, noise)
        probabilities[name], labels[name] = predict_frames(classifier, test.frames), test.success
        results[name] = {**binary_metrics(probabilities[name], labels[name]),
                         "seeds": f"{seeds.start}-{seeds.stop - 1}", **error_breakdown(probabilities[name], test)}
    target = ("expert", "random")
    results["expert + random (target)"] = binary_metrics(
        np.concatenate([probabilities[n] for n in target]), np.concatenate([labels[n] for n in target]))
    env.close()

    print(f"held-out rollouts (seed offset {offset}):")
    print(f"{'set':<28}{'frames':>8}{'pos':>6}{'precision':>11}{'recall':>8}{'accuracy':>10}{'FP':>5}{'FN':>5}")
    for name, m in results.items():
        print(f"{name:<28}{m['positives'] + m['negatives']:>8}{m['positives']:>6}{m['precision']:>11.3f}"
              f"{m['recall']:>8.3f}{m['accuracy']:>10.3f}{m['false_positives']:>5}{m['false_negatives']:>5}")
    for name in held_out:
        breakdown = {key: value for key, value in results[name].items() if key.startswith(("false_positives_",
                                                                                           "false_negatives_"))}
        print(f"{name} errors by true lift: " + ", ".join(f"{key} {value}" for key, value in breakdown.items()))
    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}",
              "cameras": list(cameras), "train": train_record, "held_out": results}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "classifier.json" if offset == 0 else f"classifier_test_offset{offset}.json"
    (args.out / name).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out / name}")


VICE_RUNS = {
    "drq-vice": {"reward": "vice"},
    "drq-true-reward": {"reward": "env"},
}


def plot(curves: dict[str, Path], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, csv_path in curves.items():
        rows = list(csv.DictReader(csv_path.open()))
        ax.plot([int(r["env_steps"]) for r in rows], [float(r["eval_success_rate"]) for r in rows], marker="o",
                label=name)
    ax.set(xlabel="env steps", ylabel="eval success (ground truth)", ylim=(-0.02, 1.02), title=f"DrQ on {ENV}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def run_vice(args: argparse.Namespace) -> None:
    from serl_agents.config import apply_preset
    from serl_agents.train import train
    from serl_envs.record import main_record_demos

    env_kwargs = apply_preset(args.preset, {}).env_kwargs  # the demos' cameras must be the run's
    demos = args.out / f"demos_{ENV}_{args.preset}"
    main_record_demos(["--env", ENV, "--device", "expert", "--episodes", "20", "--out", str(demos),
                       "--env-kwargs", json.dumps(env_kwargs)])
    curves = {}
    for name in args.runs:
        out = args.out / f"{name}_{args.preset}_seed{args.seed}"
        overrides = {"env": ENV, "steps": args.steps, "seed": args.seed, "out": out,
                     "eval_every": args.eval_every, "eval_episodes": 20, "video": False, "demos": demos,
                     "torch_threads": args.torch_threads, "resume": True, **VICE_RUNS[name]}
        if VICE_RUNS[name]["reward"] == "vice":
            overrides["goal_examples"] = demos
        cfg = apply_preset(args.preset, overrides)
        print(f"{name}: machine {platform.machine()}, {os.cpu_count()} cpus; config:\n{cfg.to_json()}")
        result = train(cfg)
        curves[name] = cfg.out / "eval.csv"
        rows = list(csv.DictReader(curves[name].open()))
        best = max(float(r["eval_success_rate"]) for r in rows)
        print(f"{name}: final success {result.success_rate:.0%}, best {best:.0%}, "
              f"wall time {float(rows[-1]['wall_time']) / 60:.1f} min")
    plot(curves, args.out / "vice.png")
    print(f"wrote {args.out / 'vice.png'}")


def run_vice_reward(args: argparse.Namespace) -> None:
    """VICE's reward before any policy learning: its classifier updated online as in `serl train --reward vice`
    (goal examples = the success frames of 20 expert episodes; negatives = batches half from those episodes' frames,
    success frames included, half from random-policy frames, as the 50/50 demo/online sampler gives them), scored
    against the ground truth on held-out expert and random rollouts every `eval_every` updates."""
    from serl_agents.classifier import binary_metrics
    from serl_agents.vice import VICE, VICEConfig

    env = gym.make(ENV)
    cameras = tuple(key for key, space in env.observation_space.spaces.items() if space.dtype == np.uint8)
    demos = rollouts(env, expert_policy, range(20), cameras)
    random = rollouts(env, random_policy, range(10_000, 10_020), cameras)
    test = {"expert": rollouts(env, expert_policy, range(1_000, 1_005), cameras),
            "random": rollouts(env, random_policy, range(20_000, 20_005), cameras)}
    env.close()
    vice = VICE(subset(demos.frames, demos.success), VICEConfig(batch_size=args.batch_size), args.device, args.seed)
    rng = np.random.default_rng(args.seed)
    history, start = [], time.perf_counter()
    for update in range(1, args.steps + 1):
        half = args.batch_size // 2
        batch = {key: np.concatenate([demos.frames[key][rng.integers(len(demos.success), size=half)],
                                      random.frames[key][rng.integers(len(random.success), size=half)]])
                 for key in cameras}
        info = vice.update(batch)
        if update % args.eval_every == 0 or update == args.steps:
            rewards = {name: np.concatenate([vice.rewards(subset(r.frames, np.arange(i, min(i + 256, len(r.lift)))))
                                             .cpu().numpy() for i in range(0, len(r.lift), 256)])
                       for name, r in test.items()}
            row = {"update": update, "seconds": round(time.perf_counter() - start, 1), **info,
                   "expert": binary_metrics(rewards["expert"], test["expert"].success),
                   "random_reward_mean": float(rewards["random"].mean())}
            history.append(row)
            print(f"update {update}: bce {info['vice/bce']:.3f}, expert precision {row['expert']['precision']:.3f} "
                  f"recall {row['expert']['recall']:.3f}, mean reward on random frames {row['random_reward_mean']:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vice_reward.json").write_text(json.dumps(history, indent=2))
    print(f"wrote {args.out / 'vice_reward.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["classifier", "vice", "vice-reward"])
    parser.add_argument("--out", type=Path, default=Path("bench/reward_classifier"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1, help="1 is fastest on a busy 2-core machine")
    parser.add_argument("--device", default="cpu")
    classifier = parser.add_argument_group("classifier")
    classifier.add_argument("--cameras", nargs="+", default=["front", "wrist"], help="cameras the classifier reads")
    classifier.add_argument("--expert-episodes", type=int, default=50, help="expert episodes for training frames")
    classifier.add_argument("--random-episodes", type=int, default=40, help="random episodes for training frames")
    classifier.add_argument("--checkpoint", type=Path, default=None,
                            help="evaluate this classifier (e.g. <out>/clf.pt) instead of training one")
    classifier.add_argument("--test-offset", type=int, default=0,
                            help="shift every held-out seed by this much (fresh episodes for a re-check)")
    classifier.add_argument("--positives", type=int, default=200)
    classifier.add_argument("--negatives", type=int, default=1000)
    classifier.add_argument("--steps", type=int, default=None,
                            help="classifier: gradient steps (1500); vice: env steps (20000); vice-reward: updates "
                                 "(500)")
    classifier.add_argument("--batch-size", type=int, default=64)
    classifier.add_argument("--test-episodes", type=int, default=20,
                            help="held-out expert episodes (and half as many random and noisy-expert ones)")
    vice = parser.add_argument_group("vice")
    vice.add_argument("--runs", nargs="+", choices=sorted(VICE_RUNS), default=sorted(VICE_RUNS))
    vice.add_argument("--preset", choices=["drq-cpu", "serl-drq"], default="drq-cpu",
                      help="vice: the DrQ recipe of both runs (drq-cpu: 64x64 cameras, ~1 h per 10k steps on a core)")
    vice.add_argument("--eval-every", type=int, default=None, help="vice: 2000 env steps; vice-reward: 100 updates")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    if args.part == "classifier":
        args.steps = args.steps or 1500
        run_classifier(args)
    elif args.part == "vice":
        args.steps, args.eval_every = args.steps or 20_000, args.eval_every or 2000
        run_vice(args)
    else:
        args.steps, args.eval_every = args.steps or 500, args.eval_every or 100
        run_vice_reward(args)


if __name__ == "__main__":
    main()

"""Replay memory per stored transition, relative to the images of one observation.

Fills a frame-once ``ReplayBuffer`` (2 cameras 128x128x3 uint8 + a 7-d state, 7-d actions) past
wrap-around with episodes of T steps, then reports ``buffer.nbytes / len(buffer)`` divided by the
bytes of one observation's images. A buffer that stores ``next_observations`` separately costs at
least 2.0; the target is <= 1.1 for SERL's 100-step sim episodes. An episode of T steps has T + 1
distinct frames, so (T + 1) / T is the floor for any layout.

    python -m benchmarks.replay_memory            # prints the table, writes benchmarks/README_replay.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
from gymnasium import spaces

from serl_agents.replay import ReplayBuffer

CAMERAS = ("front", "wrist")
IMAGE_SHAPE = (128, 128, 3)
STATE_DIM = ACTION_DIM = 7
TARGET = 1.1
HEADLINE_T = 100  # SERL franka_sim max_episode_steps


def spaces_under_test() -> tuple[spaces.Dict, spaces.Box]:
    obs = {c: spaces.Box(0, 255, IMAGE_SHAPE, np.uint8) for c in CAMERAS}
    obs["state"] = spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)
    return spaces.Dict(obs), spaces.Box(-1, 1, (ACTION_DIM,), np.float32)


def measure(capacity: int, episode_steps: int, seed: int = 0) -> dict[str, float]:
    """Fill ``capacity`` slots twice over with ``episode_steps``-step episodes; bytes per transition."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, size=(97, *IMAGE_SHAPE), dtype=np.uint8)  # distinct random frames

    def obs(uid: int) -> dict[str, np.ndarray]:
        out = {c: pool[(uid * (i + 1)) % len(pool)] for i, c in enumerate(CAMERAS)}
        out["state"] = rng.standard_normal(STATE_DIM).astype(np.float32)
        return out

    buf = ReplayBuffer(*spaces_under_test(), capacity=capacity, seed=seed)
    uid = 0
    while uid < 2 * capacity:
        current = obs(uid)
        for t in range(episode_steps):
            nxt = obs(uid + 1)
            last = t == episode_steps - 1
            buf.insert(
                {
                    "observations": current,
                    "actions": rng.uniform(-1, 1, ACTION_DIM).astype(np.float32),
                    "rewards": float(last),
                    "masks": 0.0 if last else 1.0,
                    "dones": last,
                    "next_observations": nxt,
                }
            )
            current, uid = nxt, uid + 1
        uid += 1
    image_bytes = len(CAMERAS) * int(np.prod(IMAGE_SHAPE))
    per_transition = buf.nbytes / len(buf)
    return {
        "T": episode_steps,
        "transitions": len(buf),
        "bytes_per_transition": per_transition,
        "ratio": per_transition / image_bytes,
        "floor": (episode_steps + 1) / episode_steps,
    }


def table(rows: list[dict[str, float]], capacity: int) -> str:
    lines = [
        f"| episode steps T | transitions held in {capacity} slots | bytes / transition | ratio to one obs's images | floor (T+1)/T |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['T']} | {r['transitions']} | {r['bytes_per_transition']:,.0f} | "
            f"{r['ratio']:.4f} | {r['floor']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=1000, help="observation slots (1000 = ~98 MB)")
    parser.add_argument("--episode-steps", type=int, nargs="+", default=[HEADLINE_T, 50, 20, 10])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README_replay.md"))
    args = parser.parse_args(argv)
    rows = [measure(args.capacity, t) for t in args.episode_steps]
    result = table(rows, args.capacity)
    print(result)
    headline = next((r for r in rows if r["T"] == HEADLINE_T), rows[0])
    verdict = "meets" if headline["ratio"] <= TARGET else "MISSES"
    summary = (
        f"T={headline['T']}: {headline['ratio']:.4f}x the bytes of one observation's images per stored "
        f"transition ({verdict} the <= {TARGET}x target)."
    )
    print(summary)
    command = "python -m benchmarks.replay_memory " + shlex.join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(
        "# Replay buffer memory\n\n"
        "Bytes per stored transition of the frame-once `ReplayBuffer` (2 cameras 128x128x3 uint8 + 7-d state,\n"
        "7-d actions; all storage arrays counted) divided by the bytes of one observation's images "
        f"({len(CAMERAS) * int(np.prod(IMAGE_SHAPE)):,} B).\n"
        "Storing `next_observations` separately would cost at least 2.0; an episode of T steps has T + 1\n"
        "distinct frames, so (T + 1) / T is the floor for any layout.\n\n"
        f"{result}\n\n{summary}\n\nCommand: `{command.strip()}`\n"
    )


if __name__ == "__main__":
    main()

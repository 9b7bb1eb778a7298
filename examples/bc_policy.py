"""SERL's `bc_policy.py`, as a short script over the library: behaviour cloning from demonstrations.

Uses a recorded Minari dataset (`serl record-demos ...`) or, on sim IDs, rolls out the scripted expert.

    python examples/bc_policy.py --env SerlFrankaPickCube-v0 --demos demos/pick --steps 20000
    python examples/bc_policy.py --env SerlFrankaPickCube-v0 --expert-demos 20
"""

import argparse
from pathlib import Path

from serl_agents.config import apply_preset
from serl_agents.train import train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--env", default="SerlFrankaPickCube-v0")
parser.add_argument("--demos", type=Path, default=None, help="Minari dataset from `serl record-demos`")
parser.add_argument("--expert-demos", type=int, default=20, help="scripted demos when no --demos is given (sim)")
parser.add_argument("--steps", type=int, default=20_000, help="gradient steps (SERL's BC baseline: 20000)")
parser.add_argument("--eval-episodes", type=int, default=20)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", type=Path, default=Path("runs/bc"))
args = parser.parse_args()

overrides = {"env": args.env, "agent": "bc", "steps": args.steps, "seed": args.seed, "out": args.out,
             "eval_episodes": args.eval_episodes, "eval_every": max(args.steps // 4, 1), "agent_kwargs": {}}
if args.demos is not None:
    overrides["demos"] = args.demos
else:
    overrides["expert_demos"] = args.expert_demos
result = train(apply_preset(None, overrides))
print(f"final success rate: {result.success_rate:.0%}")

"""SERL's `async_sac_state_sim.py`, as a short script over the library: SAC on the state PickCube.

SERL runs actor and learner as two processes; here the single-process loop of `serl train` runs them interleaved
(the Ray actor/learner split is `serl train --async`, when installed). Same recipe: `--preset serl-sac-state`.

    python examples/async_sac_state_sim.py --steps 20000 --out runs/sac_state
"""

import argparse
from pathlib import Path

from serl_agents.config import apply_preset
from serl_agents.train import train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--env", default="SerlFrankaPickCube-v0")
parser.add_argument("--steps", type=int, default=20_000)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--eval-episodes", type=int, default=10)
parser.add_argument("--out", type=Path, default=Path("runs/sac_state"))
args = parser.parse_args()

overrides = {"env": args.env, "steps": args.steps, "seed": args.seed, "out": args.out, "eval_episodes": args.eval_episodes}
result = train(apply_preset("serl-sac-state", overrides))
print(f"final success rate: {result.success_rate:.0%}")

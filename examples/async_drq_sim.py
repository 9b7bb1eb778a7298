"""SERL's `async_drq_sim.py`, as a short script over the library: DrQ on the vision PickCube from images.

Same recipe as `serl train --preset serl-drq` (small conv encoder on CPU; pass `--encoder resnet10` on a GPU).
Demos (`serl record-demos ... --device expert`) make it much faster: `--demos demos/pick`.

    python examples/async_drq_sim.py --steps 20000 --demos demos/pick --out runs/drq
"""

import argparse
from pathlib import Path

from serl_agents.config import apply_preset
from serl_agents.train import train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--env", default="SerlFrankaPickCubeVision-v0")
parser.add_argument("--steps", type=int, default=20_000)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--demos", type=Path, default=None)
parser.add_argument("--encoder", default="small", choices=["small", "resnet10"])
parser.add_argument("--expert-demos", type=int, default=None, help="scripted demos when no --demos (default 20, sim)")
parser.add_argument("--eval-episodes", type=int, default=10)
parser.add_argument("--out", type=Path, default=Path("runs/drq"))
args = parser.parse_args()

overrides = {"env": args.env, "steps": args.steps, "seed": args.seed, "out": args.out, "demos": args.demos,
             "expert_demos": args.expert_demos, "eval_episodes": args.eval_episodes,
             "agent_kwargs": {"encoder": args.encoder}}
result = train(apply_preset("serl-drq", overrides))
print(f"final success rate: {result.success_rate:.0%}")

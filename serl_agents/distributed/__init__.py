"""Asynchronous actor/learner training on Ray (`serl train --async`; extra `[distributed]`).

One learner (agent, replay and demo buffers, updates at its own pace) and N actors (each stepping its own env)
run as Ray actors, on one machine or across a cluster (actors on the robot PC, the learner on a GPU box).
Importing this package does not import Ray; starting a run without it raises an ImportError naming the extra.
"""

from serl_agents.distributed.calls import LearnerLostError, WorkerError
from serl_agents.distributed.config import AsyncConfig
from serl_agents.distributed.launcher import RunSummary, run_async
from serl_agents.distributed.pause import request_pause, wait_paused

__all__ = ["AsyncConfig", "LearnerLostError", "RunSummary", "WorkerError", "request_pause", "run_async",
           "wait_paused"]

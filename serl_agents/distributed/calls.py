"""Remote calls that cannot wait forever, and the errors they end in.

Every blocking wait on another process goes through `call(ref, timeout_s, what)`: a timeout, a dead worker or
an unreachable one becomes an error that says what was being waited for and for how long, instead of a hang.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'pip install "serl-torch[distributed]"  (or: pip install "ray==2.60.0")'


class LearnerLostError(RuntimeError):
    """The learner died or stopped answering; the actor stopped its robot and its loop."""


class WorkerError(RuntimeError):
    """A worker process could not be started, did not answer in time, or failed too often."""


def require_ray():
    """The `ray` module, or an ImportError that says how to install the `[distributed]` extra."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"asynchronous training (--async) runs on Ray, which is not installed: {INSTALL_HINT}") from err
    return ray


def call(ref: Any, timeout_s: float, what: str) -> Any:
    """`ray.get(ref)` bounded by `timeout_s`. Raises WorkerError naming `what` on a timeout or a dead worker;
    an exception raised inside the remote method propagates as itself."""
    import ray

    try:
        return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as err:
        raise WorkerError(f"{what}: no answer within {timeout_s:g} s") from err
    except ray.exceptions.RayActorError as err:
        raise WorkerError(f"{what}: the worker died ({type(err).__name__}: {first_line(err)})") from err


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

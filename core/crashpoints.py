"""A test facility: stop the process dead (``os._exit(137)``, as kill -9 would) at a named
point of a run, to prove that ``--resume`` converges from anywhere.

Only when ``RAYDEPLOY_TEST_HOOKS=1`` is set is ``RAYDEPLOY_CRASH_AT=<checkpoint>:<phase>[:<n>]``
read, once, when this module is imported; otherwise nothing here does anything. Phases:

    plan         the checkpoint's plan was just made
    gate         its gate was passed (approved)
    apply-start  apply is about to begin
    apply-mid    after apply's n-th write to the platform or to Ray (default the first)
    verify       apply ended, verify is about to begin
    record       verify passed, the result is about to be recorded
    unrecorded   a platform has just made a node (its process runs, or the service took the
                 create) and the caller has not recorded or even heard it: the ambiguous
                 failure (a lost answer, a kill -9) that creating by name must survive
"""
from __future__ import annotations

import os

PHASES = ("plan", "gate", "apply-start", "apply-mid", "verify", "record", "unrecorded")
EXIT_CODE = 137


def _target() -> tuple[str, str, int] | None:
    if os.environ.get("RAYDEPLOY_TEST_HOOKS") != "1":
        return None
    spec = os.environ.get("RAYDEPLOY_CRASH_AT") or ""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[1] not in PHASES or (
            len(parts) == 3 and not parts[2].isdigit()):
        return None
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 1


_TARGET = _target()
_state = {"checkpoint": None, "count": 0}


def enter(checkpoint: str) -> None:
    """A checkpoint starts (counts restart with it)."""
    if _TARGET is not None:
        _state.update(checkpoint=checkpoint, count=0)


def reached(phase: str) -> None:
    if _TARGET is None or _state["checkpoint"] != _TARGET[0] or phase != _TARGET[1]:
        return
    _state["count"] += 1
    if _state["count"] >= _TARGET[2]:
        os._exit(EXIT_CODE)


def wrote() -> None:
    """Called after each write to the platform or to Ray (apply's "mid" points)."""
    reached("apply-mid")


def unrecorded() -> None:
    """Called by a platform between making a node and recording (returning) it."""
    reached("unrecorded")


def active() -> bool:
    return _TARGET is not None

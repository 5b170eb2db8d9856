"""Errors of the checkpoint engine, each one of the five kinds of ``core.errors``."""
from __future__ import annotations

from core.errors import Conflict, DomainError, Forbidden, NotFound


class PlanChanged(Conflict):
    """The approval names a plan that is not the one awaiting approval now."""


class AlreadyDecided(Conflict):
    pass


class NoPendingApproval(NotFound):
    pass


class SelfApprovalForbidden(Forbidden):
    pass


class RunRejected(Conflict):
    """The run was rejected: that is final (the CLI's exit code 4, the API's 409)."""


class CheckpointFailed(DomainError):
    """A checkpoint's plan, apply or verify failed; the run records it and stops (it never
    reaches an edge: the orchestrator records it as the checkpoint's error)."""

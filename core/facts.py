"""Domain facts written once: checkpoint names, run and checkpoint statuses, sources."""
from __future__ import annotations

from enum import StrEnum

# The deploy order. checkpoints/ defines one module per name; the config validates
# ``approvals.required`` against this list without importing checkpoints/.
CHECKPOINT_ORDER = ("prerequisites", "project_setup", "job_creation", "head_launch",
                    "worker_launch", "serve_deploy", "monitoring", "validation")
TEARDOWN = "teardown"


class RunStatus(StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.REJECTED,
                      RunStatus.CANCELLED, RunStatus.INTERRUPTED})
RESUMABLE = frozenset({RunStatus.AWAITING_APPROVAL, RunStatus.FAILED, RunStatus.INTERRUPTED})


class Outcome(StrEnum):
    """How one checkpoint of a run ended (or where it is): the one vocabulary the store,
    the orchestrator, the API and the CLI share."""
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # its plan was empty: already satisfied
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """The checkpoint's goal holds: the run may go on to the next one."""
        return self in (Outcome.SUCCEEDED, Outcome.SKIPPED)

    @property
    def label(self) -> str:
        """How the CLI says it."""
        return {Outcome.SUCCEEDED: "done", Outcome.SKIPPED: "skipped (satisfied)",
                Outcome.AWAITING_APPROVAL: "awaiting approval"}.get(self, self.value)


# What a run ends as when a checkpoint stops it with this outcome.
RUN_STATUS_FOR = {Outcome.AWAITING_APPROVAL: RunStatus.AWAITING_APPROVAL,
                  Outcome.REJECTED: RunStatus.REJECTED, Outcome.FAILED: RunStatus.FAILED,
                  Outcome.CANCELLED: RunStatus.CANCELLED}


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"  # a revocation record: it names the record it revokes

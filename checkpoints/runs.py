"""The run state machine: the allowed status changes, as a table."""
from __future__ import annotations

from checkpoints.errors import Conflict, NotFound
from store import Store

RUNNING, AWAITING, SUCCEEDED, FAILED = "running", "awaiting_approval", "succeeded", "failed"
REJECTED, CANCELLED, INTERRUPTED = "rejected", "cancelled", "interrupted"

TRANSITIONS = {
    RUNNING: {AWAITING, SUCCEEDED, FAILED, REJECTED, CANCELLED, INTERRUPTED},
    AWAITING: {RUNNING, REJECTED, FAILED, CANCELLED, INTERRUPTED},
    FAILED: {RUNNING},
    INTERRUPTED: {RUNNING},
    SUCCEEDED: set(),
    REJECTED: set(),
    CANCELLED: set(),
}
RESUMABLE = {AWAITING, FAILED, INTERRUPTED}
FINISHED = {SUCCEEDED, FAILED, REJECTED, CANCELLED, INTERRUPTED}


def transition(store: Store, run_id: str, to: str, **fields) -> None:
    allowed_from = [s for s, targets in TRANSITIONS.items() if to in targets]
    if not store.set_run_status_if(run_id, allowed_from, status=to, **fields):
        run = store.get_run(run_id)
        raise Conflict(f"run {run_id} cannot go from {run['status'] if run else 'missing'} to {to}")


def cancel(store: Store, run_id: str) -> dict:
    run = store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    transition(store, run_id, CANCELLED, error="cancelled by request")
    store.close_approval_requests(run_id)
    store.add_event("run.cancelled", f"run {run_id} cancelled", run_id=run_id)
    return store.get_run(run_id)

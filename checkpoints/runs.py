"""The run state machine: the allowed status changes, as a table."""
from __future__ import annotations

from checkpoints import audit
from checkpoints.access import Actor
from core.errors import Conflict, DomainError, NotFound
from core.facts import RunStatus as S
from core.records import Run
from store import Store

TRANSITIONS = {
    S.RUNNING: {S.AWAITING_APPROVAL, S.SUCCEEDED, S.FAILED, S.REJECTED, S.CANCELLED,
                S.INTERRUPTED},
    S.AWAITING_APPROVAL: {S.RUNNING, S.REJECTED, S.FAILED, S.CANCELLED, S.INTERRUPTED},
    S.FAILED: {S.RUNNING},
    S.INTERRUPTED: {S.RUNNING},
    S.SUCCEEDED: set(),
    S.REJECTED: set(),
    S.CANCELLED: set(),
}


def transition(store: Store, run_id: str, to: S, **fields) -> None:
    allowed_from = [s for s, targets in TRANSITIONS.items() if to in targets]
    if not store.runs.set_run_status_if(run_id, allowed_from, status=to, **fields):
        run = store.runs.get_run(run_id)
        raise Conflict(f"run {run_id} cannot go from {run.status if run else 'missing'} to {to}")


def cancel(store: Store, run_id: str, actor: Actor, reason: str | None = None) -> Run:
    """Cancel a run (it stops at its next step; a wait for approval ends at once)."""
    if store.runs.get_run(run_id) is None:
        raise NotFound(f"run {run_id} not found")
    try:
        actor.require("operator", "cancel runs")
        with store.db.transaction():
            transition(store, run_id, S.CANCELLED, error=f"cancelled by {actor.principal}"
                       + (f": {reason}" if reason else ""))
            store.approvals.close_approval_requests(run_id)
            audit.record(store, actor, "run.cancel", run_id, "ok", run_id=run_id, reason=reason)
    except DomainError as e:
        audit.record(store, actor, "run.cancel", run_id, "refused", run_id=run_id, reason=str(e))
        raise
    store.events.add_event("run.cancelled", f"run {run_id} cancelled by {actor.principal}",
                    run_id=run_id)
    return store.runs.get_run(run_id)

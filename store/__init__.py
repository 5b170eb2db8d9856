"""The state store: runs, checkpoint results, approvals, run events, the audit trail, leases,
platform records.

One SQLite file in the state dir (``state.db``, mode 0600), shared by the CLI and the API
server. It returns the typed records of ``core.records``. This package never imports the
layers above it.
"""
from __future__ import annotations

from pathlib import Path

from core.timing import SYSTEM_CLOCK, Clock
from store.approvals import ApprovalRecords
from store.db import Database, Repository, StoreUnavailable
from store.events import AuditLog, EventLog
from store.idempotency import IdempotencyKeys
from store.leases import LeaseHeld, Leases
from store.local_records import KeyValue, PlatformRecords
from store.metrics import MetricsQueries
from store.notifications import DeliveryRecords
from store.ownership import Ownership, StoreOwned, on_network_filesystem
from store.runs import RunRecords
from store.state_dir import prepare_state_dir

__all__ = ["Store", "LeaseHeld", "StoreOwned", "StoreUnavailable", "new_id"]


def new_id(prefix: str) -> str:
    return Repository.new_id(prefix)


class Store:
    """Opens (or creates) ``state_dir/state.db`` in a state dir that must be the user's own
    (see ``prepare_state_dir``: created 0700 when missing, never chmod-ed when it exists),
    and holds one repository per kind of record, each on that file:

        runs              runs and their checkpoint results
        approvals         approval requests and decisions
        events            run events (what a run did, for people and the event stream)
        audit_log         the keyed audit trail
        leases            the cluster lease
        kv                small facts the cluster remembers (layout, addresses, proofs)
        platform_records  the local platform's apps, jobs and job runs
        idempotency       the API's Idempotency-Key answers
        deliveries        notifications and their delivery
        metrics           counts for /metrics (read only)

    Each kind is written by its domain operations only (tests/test_architecture.py).

    ``owned``: this process is the store's one writer (a control plane): it takes the
    store's ownership (StoreOwned when another process has it) and keeps a rollback journal.
    A store on a network filesystem keeps a rollback journal in any case (no WAL there)."""

    new_id = staticmethod(new_id)

    def __init__(self, state_dir: Path | str, clock: Clock = SYSTEM_CLOCK, owned: bool = False):
        self.state_dir = prepare_state_dir(state_dir)
        self.clock = clock
        self.ownership = Ownership(self.state_dir) if owned else None
        if self.ownership is not None:
            self.ownership.acquire()
        else:
            Ownership(self.state_dir).refuse_if_owned()
        wal = not owned and not on_network_filesystem(self.state_dir)
        self.db = db = Database(self.state_dir / "state.db", wal=wal, exclusive=owned,
                                before_write=self.ownership.check if owned else lambda: None)
        self.runs = RunRecords(db, clock)
        self.events = EventLog(db, clock)
        self.approvals = ApprovalRecords(db, clock, self.events)
        self.audit_log = AuditLog(db, clock, self.state_dir)
        self.leases = Leases(db, clock)
        self.kv = KeyValue(db, clock)
        self.platform_records = PlatformRecords(db, clock)
        self.idempotency = IdempotencyKeys(db, clock)
        self.deliveries = DeliveryRecords(db, clock)
        self.metrics = MetricsQueries(db, clock)

    def close(self) -> None:
        """Let go of the file (and of the store's ownership, if this process had it)."""
        self.db.close()
        if self.ownership is not None:
            self.ownership.release()

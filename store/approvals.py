"""Approval requests (a run waits at a gate) and decisions (append-only records)."""
from __future__ import annotations

from core.facts import Decision
from core.records import Approval, ApprovalRequest
from store.db import Repository, dump, load_row

REQUEST_JSON = ("plan", "reasons")


def _request(row) -> ApprovalRequest | None:
    data = load_row(row, REQUEST_JSON, ("destructive", "breaking"))
    if data is None:
        return None
    return ApprovalRequest(**{**data, "reasons": tuple(data["reasons"])})


def _approval(row) -> Approval | None:
    data = load_row(row, (), ("acknowledge_risks", "acknowledge_breaking"))
    if data is None:
        return None
    data.pop("idempotency_key", None)  # an older store's unused column (store/db.py)
    return Approval(**{**data, "decision": Decision(data["decision"])})


class ApprovalRecords(Repository):
    """Requests (a run waits at a gate) and decisions; a decision is a run event too."""

    def __init__(self, db, clock, events):
        super().__init__(db, clock)
        self.events = events

    def open_approval_request(self, run_id: str, checkpoint: str, fingerprint: str, plan: dict,
                              destructive: bool, reasons: list[str], requester: str,
                              breaking: bool = False) -> ApprovalRequest:
        """Record that ``run_id`` waits at ``checkpoint`` for this plan (one open request each)."""
        now = self.clock.time()
        with self.db.transaction() as c:
            row = c.execute("SELECT * FROM approval_requests WHERE run_id=? AND checkpoint=?"
                            " AND fingerprint=? AND closed_at IS NULL",
                            (run_id, checkpoint, fingerprint)).fetchone()
            if row is not None:
                return _request(row)
            c.execute("UPDATE approval_requests SET closed_at=? WHERE checkpoint=?"
                      " AND closed_at IS NULL", (now, checkpoint))
            req_id = self.new_id("req")
            c.execute("INSERT INTO approval_requests (id, run_id, checkpoint, fingerprint, plan,"
                      " destructive, reasons, requester, created_at, breaking)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (req_id, run_id, checkpoint, fingerprint, dump(plan), int(destructive),
                       dump(list(reasons)), requester, now, int(breaking)))
        return self.get_approval_request(req_id)

    def get_approval_request(self, req_id: str) -> ApprovalRequest | None:
        return _request(self.db.query_one("SELECT * FROM approval_requests WHERE id=?", (req_id,)))

    def open_request_for(self, checkpoint: str) -> ApprovalRequest | None:
        return _request(self.db.query_one(
            "SELECT * FROM approval_requests WHERE checkpoint=? AND closed_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1", (checkpoint,)))

    def approval_requests(self, open_only: bool = False) -> list[ApprovalRequest]:
        sql = "SELECT * FROM approval_requests"
        if open_only:
            sql += " WHERE closed_at IS NULL"
        return [_request(r) for r in self.db.query(sql + " ORDER BY created_at DESC")]

    def close_approval_requests(self, run_id: str, checkpoint: str | None = None) -> None:
        """Close the run's open requests (at ``checkpoint``, or all of them)."""
        sql = "UPDATE approval_requests SET closed_at=? WHERE run_id=?"
        params = [self.clock.time(), run_id]
        if checkpoint is not None:
            sql += " AND checkpoint=?"
            params.append(checkpoint)
        with self.db.transaction() as c:
            c.execute(sql + " AND closed_at IS NULL", params)

    def add_approval(self, *, checkpoint: str, plan_fingerprint: str, decision: Decision,
                     approver: str, source: str, run_id: str | None = None,
                     requester: str | None = None, reason: str | None = None,
                     acknowledge_risks: bool = False, ttl_seconds: float | None = None,
                     revokes: str | None = None, claimed_by: str | None = None,
                     acknowledge_breaking: bool = False) -> Approval:
        """Append a decision record."""
        now = self.clock.time()
        decision = Decision(decision)
        with self.db.transaction() as c:
            approval_id = self.new_id("apr")
            c.execute("INSERT INTO approvals (id, checkpoint, plan_fingerprint, run_id, decision,"
                      " approver, requester, reason, acknowledge_risks, source, created_at,"
                      " expires_at, revokes, claimed_by, acknowledge_breaking)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (approval_id, checkpoint, plan_fingerprint, run_id, str(decision), approver,
                       requester, reason, int(acknowledge_risks), source, now,
                       now + ttl_seconds if ttl_seconds else None, revokes, claimed_by,
                       int(acknowledge_breaking)))
            self.events.add_event(f"approval.{decision}",
                           f"{decision} {checkpoint} by {approver}" + (f": {reason}" if reason else ""),
                           run_id=run_id, checkpoint=checkpoint,
                           data={"approval_id": approval_id, "plan_fingerprint": plan_fingerprint,
                                 "source": source, "acknowledge_risks": acknowledge_risks,
                                 "revokes": revokes})
        return self.get_approval(approval_id)

    def get_approval(self, approval_id: str) -> Approval | None:
        return _approval(self.db.query_one("SELECT * FROM approvals WHERE id=?", (approval_id,)))

    def decisions(self, checkpoint: str | None = None,
                  fingerprint: str | None = None) -> list[Approval]:
        """Decision records, newest first."""
        sql, params = "SELECT * FROM approvals WHERE 1=1", []
        if checkpoint:
            sql += " AND checkpoint=?"
            params.append(checkpoint)
        if fingerprint:
            sql += " AND plan_fingerprint=?"
            params.append(fingerprint)
        return [_approval(r) for r in self.db.query(sql + " ORDER BY created_at DESC, rowid DESC",
                                                    params)]

    def revoked_ids(self) -> set[str]:
        return {r["revokes"] for r in self.db.query(
            "SELECT revokes FROM approvals WHERE revokes IS NOT NULL")}

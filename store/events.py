"""Run events (the progress of runs, streamed to clients) and the audit trail (who did what
to the cluster, hash-chained so an altered or missing event is detectable)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from core.records import AuditEvent, Event
from store.db import dump, load_row

GENESIS = "0" * 64
AUDIT_FIELDS = ("seq", "created_at", "principal", "claimed_name", "source", "client_address",
                "action", "target", "plan_fingerprint", "run_id", "result", "detail",
                "prev_hash")


def audit_hash(fields: dict) -> str:
    """The hash of an audit event: every field but ``hash``, canonical JSON, chained by
    ``prev_hash``."""
    canonical = json.dumps({k: fields[k] for k in AUDIT_FIELDS}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _event(row) -> Event:
    return Event(**load_row(row, ("data",)))


def _audit(row) -> AuditEvent:
    return AuditEvent(**load_row(row, ("detail",)))


class EventLog:
    def add_event(self, kind: str, message: str, run_id: str | None = None,
                  checkpoint: str | None = None, data: dict | None = None) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO events (run_id, kind, checkpoint, message, data,"
                            " created_at) VALUES (?,?,?,?,?,?)",
                            (run_id, kind, checkpoint, message,
                             dump(data) if data is not None else None, self.clock.time()))
            return cur.lastrowid

    def events(self, run_id: str | None = None, after_id: int = 0, kind_prefix: str | None = None,
               limit: int = 1000) -> list[Event]:
        sql, params = "SELECT * FROM events WHERE id>?", [after_id]
        if run_id is not None:
            sql += " AND run_id=?"
            params.append(run_id)
        if kind_prefix is not None:
            sql += " AND kind LIKE ?"
            params.append(kind_prefix + "%")
        return [_event(r) for r in self.db.query(sql + " ORDER BY id LIMIT ?", params + [limit])]


class AuditLog:
    def audit(self, *, principal: str, source: str, action: str, target: str, result: str,
              claimed_name: str | None = None, client_address: str | None = None,
              plan_fingerprint: str | None = None, run_id: str | None = None,
              detail: dict | None = None) -> AuditEvent:
        """Append one audit event, chained to the last one (inside the caller's transaction
        when there is one, so the event and the change it records commit together)."""
        with self.db.transaction() as c:
            last = c.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq_row = c.execute("SELECT seq FROM sqlite_sequence WHERE name='audit'").fetchone()
            fields = {"seq": max(seq_row[0] if seq_row else 0, last[0] if last else 0) + 1,
                      "created_at": self.clock.time(), "principal": principal,
                      "claimed_name": claimed_name, "source": source,
                      "client_address": client_address, "action": action, "target": target,
                      "plan_fingerprint": plan_fingerprint, "run_id": run_id, "result": result,
                      "detail": detail or {}, "prev_hash": last[1] if last else GENESIS}
            fields["hash"] = audit_hash(fields)
            c.execute(f"INSERT INTO audit ({', '.join(fields)}) VALUES "
                      f"({', '.join('?' * len(fields))})",
                      [dump(v) if k == "detail" else v for k, v in fields.items()])
        return AuditEvent(**fields)

    def audit_events(self, *, since: float | None = None, action: str | None = None,
                     principal: str | None = None, target: str | None = None,
                     run_id: str | None = None, after_seq: int = 0,
                     limit: int | None = None) -> Iterator[AuditEvent]:
        """Audit events in order, filtered; a generator, so an export streams."""
        sql, params = "SELECT * FROM audit WHERE seq>?", [after_seq]
        for column, value, op in (("created_at", since, ">="), ("principal", principal, "="),
                                  ("target", target, "="), ("run_id", run_id, "=")):
            if value is not None:
                sql += f" AND {column}{op}?"
                params.append(value)
        if action is not None:  # "approval" matches approval.approve, approval.reject, ...
            sql += " AND (action=? OR action LIKE ?)"
            params += [action, action + ".%"]
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for row in self.db.rows(sql, params):
            yield _audit(row)

    def verify_audit(self) -> tuple[int, str | None]:
        """Walk the chain: (events checked, None) when intact, else (checked, what is wrong
        at the first bad event)."""
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        for row in self.db.rows("SELECT * FROM audit ORDER BY seq"):
            event = load_row(row, ("detail",))
            if event["seq"] != expected_seq:
                return checked, (f"event {expected_seq} is missing (the next one is "
                                 f"{event['seq']})")
            if event["prev_hash"] != expected_prev:
                return checked, (f"event {event['seq']} does not follow event "
                                 f"{expected_seq - 1}: an event before it was altered or removed")
            if audit_hash(event) != event["hash"]:
                return checked, f"event {event['seq']} was altered (its hash does not match)"
            expected_prev, expected_seq, checked = event["hash"], expected_seq + 1, checked + 1
        issued = self.db.query_one("SELECT seq FROM sqlite_sequence WHERE name='audit'")
        if issued and issued[0] >= expected_seq:
            return checked, (f"events {expected_seq} to {issued[0]} are missing "
                             f"(removed from the end)")
        return checked, None

"""Run events (the progress of runs, streamed to clients) and the audit trail (who did what
to the cluster, chained so an altered or missing event is detectable).

The chain is keyed: each event's ``hash`` is an HMAC-SHA256, with a key kept outside the
store (``store.keys.audit_key``: ``state_dir/audit.key`` or ``RAYDEPLOY_AUDIT_KEY``), of its
fields and the previous event's hash. Who can write the store but not read the key cannot
edit an event and recompute its hash, nor drop events from the end (the store's head record,
``meta.audit_head``, is keyed too). Whoever holds the key (the store's keeper) could rewrite
the trail after the last head that left the store: every export and every notification
carries the head, and ``verify_audit(expect_head=H)`` fails when the trail no longer reaches H.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import NamedTuple

from core.records import AuditEvent, Event
from store.db import Repository, dump, load_row
from store.keys import KeyFileError, audit_key, claim_keying, keyed_marker

GENESIS = "0" * 64
AUDIT_FIELDS = ("seq", "created_at", "principal", "claimed_name", "source", "client_address",
                "action", "target", "plan_fingerprint", "run_id", "result", "detail",
                "prev_hash")


def _canonical(fields: dict) -> bytes:
    return json.dumps({k: fields[k] for k in AUDIT_FIELDS}, sort_keys=True,
                      separators=(",", ":"), default=str).encode()


def audit_hash(fields: dict, key: bytes) -> str:
    """The hash of an audit event: an HMAC of every field but ``hash`` (canonical JSON),
    chained by ``prev_hash``."""
    return hmac.new(key, _canonical(fields), hashlib.sha256).hexdigest()


def legacy_hash(fields: dict) -> str:
    """How events were hashed before the chain was keyed (schema 3 and earlier)."""
    return hashlib.sha256(_canonical(fields)).hexdigest()


def key_id(key: bytes) -> str:
    """Names a key without revealing it: which key a trail was chained with."""
    return hmac.new(key, b"raydeploy audit key id", hashlib.sha256).hexdigest()[:16]


def _head_mac(key: bytes, seq: int, event_hash: str) -> str:
    return hmac.new(key, f"head:{seq}:{event_hash}".encode(), hashlib.sha256).hexdigest()


class AuditCheck(NamedTuple):
    checked: int  # events verified
    problem: str | None  # the first thing wrong, or None
    head: dict | None  # {"seq", "hash"} of the last event


def _event(row) -> Event:
    return Event(**load_row(row, ("data",)))


def _audit(row) -> AuditEvent:
    return AuditEvent(**load_row(row, ("detail",)))


class EventLog(Repository):
    def add_event(self, kind: str, message: str, run_id: str | None = None,
                  checkpoint: str | None = None, data: dict | None = None) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO events (run_id, kind, checkpoint, message, data,"
                            " created_at) VALUES (?,?,?,?,?,?)",
                            (run_id, kind, checkpoint, message,
                             dump(data) if data is not None else None, self.clock.time()))
            return cur.lastrowid

    def read(self, run_id: str | None = None, after_id: int = 0, kind_prefix: str | None = None,
               limit: int = 1000) -> list[Event]:
        sql, params = "SELECT * FROM events WHERE id>?", [after_id]
        if run_id is not None:
            sql += " AND run_id=?"
            params.append(run_id)
        if kind_prefix is not None:
            sql += " AND kind LIKE ?"
            params.append(kind_prefix + "%")
        return [_event(r) for r in self.db.query(sql + " ORDER BY id LIMIT ?", params + [limit])]


class AuditLog(Repository):
    """The audit trail: a keyed hash chain, its head recorded and anchored outside."""

    def __init__(self, db, clock, state_dir):
        super().__init__(db, clock)
        self.state_dir = state_dir
        self._audit_key: bytes | None = None

    def audit_key(self) -> bytes:
        """The key this store's trail is chained with. The first time a state dir's trail
        is keyed (``store.keys.claim_keying``), events an older version chained plainly are
        chained again with it, once. A key that is gone, or another key than the one the
        trail was chained with, is refused: it would make every event look altered."""
        if self._audit_key is not None:
            return self._audit_key
        known = keyed_marker(self.state_dir)
        key = audit_key(self.state_dir, create=known is None)
        if key is None:
            raise KeyFileError(f"the audit trail in {self.state_dir} is chained with a key "
                               f"that is gone (audit.key, or RAYDEPLOY_AUDIT_KEY): restore "
                               f"it; nothing can be audited without it")
        if known is None:
            # in one write transaction: others wait to append until it is chained; the marker
            # last, so a crash before it leaves the plain chain to be chained next time
            with self.db.transaction() as c:
                if keyed_marker(self.state_dir) is None:
                    self._audit_key = key
                    try:
                        self._chain_again(c, key)
                        claim_keying(self.state_dir, key_id(key))
                    finally:
                        self._audit_key = None
            known = keyed_marker(self.state_dir)
        if known != key_id(key):
            raise KeyFileError(f"the audit trail in {self.state_dir} is chained with another "
                               f"key than the one given (audit.key or RAYDEPLOY_AUDIT_KEY): "
                               f"every process writing this store needs the same key")
        self._audit_key = key
        return key

    def derived_key(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (e.g. sealing redacted values into plans),
        derived from this deployment's audit key: nothing else to keep."""
        return hmac.new(self.audit_key(), b"derive\0" + purpose.encode(),
                        hashlib.sha256).digest()

    def audit(self, *, principal: str, source: str, action: str, target: str, result: str,
              claimed_name: str | None = None, client_address: str | None = None,
              plan_fingerprint: str | None = None, run_id: str | None = None,
              detail: dict | None = None) -> AuditEvent:
        """Append one audit event, chained to the last one (inside the caller's transaction
        when there is one, so the event and the change it records commit together)."""
        key = self.audit_key()
        with self.db.transaction() as c:
            last = c.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq_row = c.execute("SELECT seq FROM sqlite_sequence WHERE name='audit'").fetchone()
            fields = {"seq": max(seq_row[0] if seq_row else 0, last[0] if last else 0) + 1,
                      "created_at": self.clock.time(), "principal": principal,
                      "claimed_name": claimed_name, "source": source,
                      "client_address": client_address, "action": action, "target": target,
                      "plan_fingerprint": plan_fingerprint, "run_id": run_id, "result": result,
                      "detail": detail or {}, "prev_hash": last[1] if last else GENESIS}
            fields["hash"] = audit_hash(fields, key)
            c.execute(f"INSERT INTO audit ({', '.join(fields)}) VALUES "
                      f"({', '.join('?' * len(fields))})",
                      [dump(v) if k == "detail" else v for k, v in fields.items()])
            self._set_head(c, key, fields["seq"], fields["hash"])
        return AuditEvent(**fields)

    @staticmethod
    def _set_head(c, key: bytes, seq: int, event_hash: str) -> None:
        c.execute("INSERT OR REPLACE INTO meta VALUES ('audit_head', ?)",
                  (f"{seq}:{event_hash}:{_head_mac(key, seq, event_hash)}",))

    def audit_head(self) -> dict | None:
        """Where the trail ends now: {"seq", "hash"} of its last event (None when empty).
        What leaves the store with every export, to be anchored outside it."""
        self.audit_key()  # a trail of an older version is chained with the key first
        row = self.db.query_one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return {"seq": row[0], "hash": row[1]} if row else None

    def audit_events(self, *, since: float | None = None, action: str | None = None,
                     principal: str | None = None, target: str | None = None,
                     run_id: str | None = None, after_seq: int = 0,
                     limit: int | None = None, up_to_seq: int | None = None
                     ) -> Iterator[AuditEvent]:
        """Audit events in order, filtered; a generator, so an export streams. ``up_to_seq``:
        none after it (an export stops at the head it announces)."""
        sql, params = "SELECT * FROM audit WHERE seq>?", [after_seq]
        for column, value, op in (("created_at", since, ">="), ("principal", principal, "="),
                                  ("target", target, "="), ("run_id", run_id, "="),
                                  ("seq", up_to_seq, "<=")):
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

    def verify_audit(self, expect_head: str | None = None) -> AuditCheck:
        """Walk the chain: every event's keyed hash, its link to the one before, no gap, the
        keyed head record, and (``expect_head``: a head hash anchored earlier) that the trail
        still reaches that head."""
        key = self.audit_key()
        expected_prev, expected_seq, checked, head, reached = GENESIS, 1, 0, None, False
        for row in self.db.rows("SELECT * FROM audit ORDER BY seq"):
            event = load_row(row, ("detail",))
            if event["seq"] != expected_seq:
                return AuditCheck(checked, f"event {expected_seq} is missing (the next one is "
                                           f"{event['seq']})", head)
            if event["prev_hash"] != expected_prev:
                return AuditCheck(checked, f"event {event['seq']} does not follow event "
                                           f"{expected_seq - 1}: an event before it was altered "
                                           f"or removed", head)
            if not hmac.compare_digest(audit_hash(event, key), event["hash"]):
                return AuditCheck(checked, f"event {event['seq']} was altered (its hash does "
                                           f"not match)", head)
            reached = reached or event["hash"] == expect_head
            expected_prev, expected_seq, checked = event["hash"], expected_seq + 1, checked + 1
            head = {"seq": event["seq"], "hash": event["hash"]}
        problem = self._head_problem(key, head)
        if problem is None and expect_head and not reached:
            problem = (f"the trail does not reach the head {expect_head} anchored earlier "
                       f"(it ends at event {head['seq'] if head else 0}): events were removed "
                       f"from its end, or it was rewritten")
        return AuditCheck(checked, problem, head)

    def _head_problem(self, key: bytes, head: dict | None) -> str | None:
        """What the keyed head record says against where the chain ends."""
        issued = self.db.query_one("SELECT seq FROM sqlite_sequence WHERE name='audit'")
        last = head["seq"] if head else 0
        if issued and issued[0] > last:
            return f"events {last + 1} to {issued[0]} are missing (removed from the end)"
        record = self.db.query_one("SELECT value FROM meta WHERE key='audit_head'")
        if record is None:
            return None if head is None else "the trail's head record is missing"
        seq, event_hash, mac = record[0].split(":")
        if not hmac.compare_digest(_head_mac(key, int(seq), event_hash), mac):
            return "the trail's head record was altered"
        if int(seq) > last:
            return f"events {last + 1} to {seq} are missing (removed from the end)"
        if head is None or (int(seq), event_hash) != (last, head["hash"]):
            return f"the trail's head record names event {seq}, not its last event {last}"
        return None

    def _chain_again(self, c, key: bytes) -> None:
        """Events of an older version (a plain SHA-256 chain) chained with the key. The plain
        chain is checked first, and what it found is recorded in the first keyed event after
        them (audit.rekey), so an earlier alteration is kept on record, not laundered."""
        rows = c.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        events = [load_row(r, ("detail",)) for r in rows]
        if not events:
            return
        problem, prev = None, GENESIS
        for n, event in enumerate(events, 1):
            if problem is None and (event["seq"] != n or event["prev_hash"] != prev
                                    or legacy_hash(event) != event["hash"]):
                problem = f"event {event['seq']} did not verify in the plain chain"
            prev = event["hash"]
        plain_head, prev = prev, GENESIS
        for event in events:
            event["prev_hash"] = prev
            prev = event["hash"] = audit_hash(event, key)
            c.execute("UPDATE audit SET prev_hash=?, hash=? WHERE seq=?",
                      (event["prev_hash"], event["hash"], event["seq"]))
        self._set_head(c, key, events[-1]["seq"], events[-1]["hash"])
        self.audit(principal="raydeploy", source="store", action="audit.rekey", target="audit",
                   result="ok" if problem is None else "failed",
                   detail={"events": len(events), "plain_head": plain_head,
                           **({"problem": problem} if problem else {})})

"""The state store: runs, checkpoint results, approvals, audit events, leases, platform records.

One SQLite file in the state dir (``state.db``, mode 0600), shared by the CLI and the API
server. This package never imports the layers above it.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

from store.db import Database

__all__ = ["Store", "LeaseHeld", "new_id"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _row(row) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    for key in ("selection", "options", "plan", "reasons", "data", "spec", "value"):
        if key in out and isinstance(out[key], str) and out[key][:1] in "[{\"":
            out[key] = json.loads(out[key])
    for key in ("destructive", "acknowledge_risks"):
        if key in out:
            out[key] = bool(out[key])
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class LeaseHeld(Exception):
    """Another live process holds the cluster lease."""

    def __init__(self, lease: dict):
        self.lease = lease
        super().__init__(
            f"another run ({lease.get('run_id') or 'no run'}) holds the cluster lease: "
            f"holder {lease['holder']}, pid {lease['pid']} on {lease['host']}, "
            f"until {time.strftime('%H:%M:%S', time.localtime(lease['expires_at']))}; "
            f"wait for it to finish (or for its lease to expire if it crashed)")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class Store:
    def __init__(self, state_dir: Path | str, clock: Callable[[], float] = time.time):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.db = Database(self.state_dir / "state.db")
        self.clock = clock

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, mode: str, selection: list[str], requester: str, source: str,
                   options: dict | None = None, status: str = "running") -> dict:
        now = self.clock()
        run_id = new_id("run")
        with self.db.transaction() as c:
            c.execute("INSERT INTO runs (id, mode, status, requester, source, selection, options,"
                      " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                      (run_id, mode, status, requester, source, _dump(selection),
                       _dump(options or {}), now, now))
            for name in selection:
                c.execute("INSERT INTO checkpoint_results (run_id, checkpoint, status)"
                          " VALUES (?,?,'pending')", (run_id, name))
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> dict | None:
        run = _row(self.db.query_one("SELECT * FROM runs WHERE id=?", (run_id,)))
        if run is not None:
            order = {name: i for i, name in enumerate(run["selection"])}
            results = [_row(r) for r in self.db.query(
                "SELECT * FROM checkpoint_results WHERE run_id=?", (run_id,))]
            run["checkpoints"] = sorted(results, key=lambda r: order.get(r["checkpoint"], 99))
        return run

    def list_runs(self, limit: int = 50, statuses: Iterable[str] | None = None) -> list[dict]:
        sql, params = "SELECT id FROM runs", []
        if statuses:
            statuses = list(statuses)
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
            params += statuses
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        return [self.get_run(r["id"]) for r in self.db.query(sql, params + [limit])]

    def update_run(self, run_id: str, **fields) -> None:
        fields["updated_at"] = self.clock()
        if fields.get("status") in ("succeeded", "failed", "rejected", "cancelled", "interrupted"):
            fields.setdefault("finished_at", fields["updated_at"])
        elif "status" in fields:
            fields.setdefault("finished_at", None)
        if "options" in fields:
            fields["options"] = _dump(fields["options"])
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id=?", (*fields.values(), run_id))

    def set_run_status_if(self, run_id: str, allowed_from: Iterable[str], **fields) -> bool:
        """Compare-and-set the run status; False if the run is not in one of ``allowed_from``."""
        allowed_from = list(allowed_from)
        with self.db.transaction() as c:
            row = c.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None or row["status"] not in allowed_from:
                return False
            self.update_run(run_id, **fields)
            return True

    def update_result(self, run_id: str, checkpoint: str, **fields) -> None:
        if "plan" in fields and fields["plan"] is not None:
            fields["plan"] = _dump(fields["plan"])
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as c:
            c.execute(f"UPDATE checkpoint_results SET {cols} WHERE run_id=? AND checkpoint=?",
                      (*fields.values(), run_id, checkpoint))

    def last_result(self, checkpoint: str) -> dict | None:
        return _row(self.db.query_one(
            "SELECT r.* FROM checkpoint_results r JOIN runs ON runs.id=r.run_id"
            " WHERE r.checkpoint=? AND r.status!='pending'"
            " ORDER BY COALESCE(r.finished_at, r.started_at) DESC LIMIT 1", (checkpoint,)))

    # -- events (audit trail and run progress) -------------------------------------------
    def add_event(self, kind: str, message: str, run_id: str | None = None,
                  checkpoint: str | None = None, data: dict | None = None) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO events (run_id, kind, checkpoint, message, data, created_at)"
                            " VALUES (?,?,?,?,?,?)",
                            (run_id, kind, checkpoint, message,
                             _dump(data) if data is not None else None, self.clock()))
            return cur.lastrowid

    def events(self, run_id: str | None = None, after_id: int = 0, kind_prefix: str | None = None,
               limit: int = 1000) -> list[dict]:
        sql, params = "SELECT * FROM events WHERE id>?", [after_id]
        if run_id is not None:
            sql += " AND run_id=?"
            params.append(run_id)
        if kind_prefix is not None:
            sql += " AND kind LIKE ?"
            params.append(kind_prefix + "%")
        return [_row(r) for r in self.db.query(sql + " ORDER BY id LIMIT ?", params + [limit])]

    # -- approvals ------------------------------------------------------------------------
    def open_approval_request(self, run_id: str, checkpoint: str, fingerprint: str, plan: dict,
                              destructive: bool, reasons: list[str], requester: str) -> dict:
        """Record that ``run_id`` waits at ``checkpoint`` for this plan (one open request each)."""
        now = self.clock()
        with self.db.transaction() as c:
            row = c.execute("SELECT * FROM approval_requests WHERE run_id=? AND checkpoint=?"
                            " AND fingerprint=? AND closed_at IS NULL",
                            (run_id, checkpoint, fingerprint)).fetchone()
            if row is not None:
                return _row(row)
            c.execute("UPDATE approval_requests SET closed_at=? WHERE checkpoint=? AND closed_at IS NULL",
                      (now, checkpoint))
            req_id = new_id("req")
            c.execute("INSERT INTO approval_requests VALUES (?,?,?,?,?,?,?,?,?,NULL)",
                      (req_id, run_id, checkpoint, fingerprint, _dump(plan), int(destructive),
                       _dump(reasons), requester, now))
        return self.get_approval_request(req_id)

    def get_approval_request(self, req_id: str) -> dict | None:
        return _row(self.db.query_one("SELECT * FROM approval_requests WHERE id=?", (req_id,)))

    def open_request_for(self, checkpoint: str) -> dict | None:
        return _row(self.db.query_one(
            "SELECT * FROM approval_requests WHERE checkpoint=? AND closed_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1", (checkpoint,)))

    def approval_requests(self, open_only: bool = False) -> list[dict]:
        sql = "SELECT * FROM approval_requests"
        if open_only:
            sql += " WHERE closed_at IS NULL"
        return [_row(r) for r in self.db.query(sql + " ORDER BY created_at DESC")]

    def close_approval_requests(self, run_id: str, checkpoint: str | None = None) -> None:
        """Close the run's open requests (at ``checkpoint``, or all of them)."""
        sql, params = "UPDATE approval_requests SET closed_at=? WHERE run_id=?", [self.clock(), run_id]
        if checkpoint is not None:
            sql += " AND checkpoint=?"
            params.append(checkpoint)
        with self.db.transaction() as c:
            c.execute(sql + " AND closed_at IS NULL", params)

    def add_approval(self, *, checkpoint: str, plan_fingerprint: str, decision: str, approver: str,
                     source: str, run_id: str | None = None, requester: str | None = None,
                     reason: str | None = None, acknowledge_risks: bool = False,
                     ttl_seconds: float | None = None, revokes: str | None = None,
                     idempotency_key: str | None = None) -> tuple[dict, bool]:
        """Append a decision record. Returns (record, created); an idempotency key seen before
        returns the earlier record and False."""
        now = self.clock()
        with self.db.transaction() as c:
            earlier = self.approval_by_key(idempotency_key) if idempotency_key else None
            if earlier is not None:
                return earlier, False
            approval_id = new_id("apr")
            c.execute("INSERT INTO approvals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (approval_id, checkpoint, plan_fingerprint, run_id, decision, approver,
                       requester, reason, int(acknowledge_risks), source, now,
                       now + ttl_seconds if ttl_seconds else None, revokes, idempotency_key))
            self.add_event(f"approval.{decision}",
                           f"{decision} {checkpoint} by {approver}" + (f": {reason}" if reason else ""),
                           run_id=run_id, checkpoint=checkpoint,
                           data={"approval_id": approval_id, "plan_fingerprint": plan_fingerprint,
                                 "source": source, "acknowledge_risks": acknowledge_risks,
                                 "revokes": revokes})
        return self.get_approval(approval_id), True

    def approval_by_key(self, idempotency_key: str) -> dict | None:
        return _row(self.db.query_one("SELECT * FROM approvals WHERE idempotency_key=?",
                                      (idempotency_key,)))

    def get_approval(self, approval_id: str) -> dict | None:
        return _row(self.db.query_one("SELECT * FROM approvals WHERE id=?", (approval_id,)))

    def approvals(self, checkpoint: str | None = None, fingerprint: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM approvals WHERE 1=1", []
        if checkpoint:
            sql += " AND checkpoint=?"
            params.append(checkpoint)
        if fingerprint:
            sql += " AND plan_fingerprint=?"
            params.append(fingerprint)
        return [_row(r) for r in self.db.query(sql + " ORDER BY created_at DESC, rowid DESC", params)]

    def revoked_ids(self) -> set[str]:
        return {r["revokes"] for r in self.db.query(
            "SELECT revokes FROM approvals WHERE revokes IS NOT NULL")}

    # -- lease: one run at a time per cluster -------------------------------------------------
    def acquire_lease(self, holder: str, run_id: str | None, ttl: float = 30.0,
                      name: str = "cluster") -> dict:
        now = self.clock()
        host, pid = socket.gethostname(), os.getpid()
        with self.db.transaction() as c:
            row = _row(c.execute("SELECT * FROM leases WHERE name=?", (name,)).fetchone())
            if row is not None and row["holder"] != holder and not self._lease_dead(row, now):
                raise LeaseHeld(row)
            c.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?)",
                      (name, holder, run_id, pid, host, now, now + ttl))
            previous = row if row is not None and row["holder"] != holder else None
        return {"name": name, "holder": holder, "previous": previous}

    def _lease_dead(self, lease: dict, now: float) -> bool:
        if lease["expires_at"] < now:
            return True
        # A holder on this machine whose process is gone is dead now, not at expiry.
        return lease["host"] == socket.gethostname() and not _pid_alive(lease["pid"])

    def current_lease(self, name: str = "cluster") -> dict | None:
        row = _row(self.db.query_one("SELECT * FROM leases WHERE name=?", (name,)))
        if row is None or self._lease_dead(row, self.clock()):
            return None
        return row

    def renew_lease(self, holder: str, ttl: float = 30.0, name: str = "cluster",
                    run_id: str | None = None) -> bool:
        with self.db.transaction() as c:
            sets, params = "expires_at=?", [self.clock() + ttl]
            if run_id is not None:
                sets += ", run_id=?"
                params.append(run_id)
            cur = c.execute(f"UPDATE leases SET {sets} WHERE name=? AND holder=?",
                            (*params, name, holder))
            return cur.rowcount == 1

    def release_lease(self, holder: str, name: str = "cluster") -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    # -- small keyed records (cluster layout, serve app ownership) --------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self.db.query_one("SELECT value FROM kv WHERE key=?", (key,))
        return json.loads(row["value"]) if row else default

    def kv_set(self, key: str, value: Any) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?)", (key, _dump(value), self.clock()))

    def kv_delete(self, key: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM kv WHERE key=?", (key,))

    def kv_items(self, prefix: str) -> dict[str, Any]:
        rows = self.db.query("SELECT key, value FROM kv WHERE key LIKE ?", (prefix + "%",))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    # -- local platform records --------------------------------------------------------------------
    def put_platform_app(self, app: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_apps VALUES (?,?,?,?,?,?,?,?)",
                      (app["id"], app["name"], _dump(app["spec"]), app.get("pid"),
                       app.get("pid_start"), app["status"], app["created_at"], app.get("stopped_at")))

    def platform_apps(self) -> list[dict]:
        return [_row(r) for r in self.db.query("SELECT * FROM platform_apps ORDER BY created_at")]

    def platform_app(self, app_id: str) -> dict | None:
        return _row(self.db.query_one("SELECT * FROM platform_apps WHERE id=?", (app_id,)))

    def delete_platform_app(self, app_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM platform_apps WHERE id=?", (app_id,))

    def put_platform_job(self, job: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_jobs VALUES (?,?,?,?,?)",
                      (job["id"], job["name"], _dump(job["spec"]), job["created_at"],
                       job["updated_at"]))

    def platform_jobs(self) -> list[dict]:
        return [_row(r) for r in self.db.query("SELECT * FROM platform_jobs ORDER BY created_at")]

    def put_job_run(self, run: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_job_runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (run["id"], run["job_id"], run["spec_hash"], run["status"], run.get("pid"),
                       run.get("pid_start"), run.get("exit_code"), run.get("log_path"),
                       run["created_at"], run.get("finished_at")))

    def job_runs(self, job_id: str) -> list[dict]:
        return [_row(r) for r in self.db.query(
            "SELECT * FROM platform_job_runs WHERE job_id=? ORDER BY created_at DESC, rowid DESC",
            (job_id,))]

    def job_run(self, run_id: str) -> dict | None:
        return _row(self.db.query_one("SELECT * FROM platform_job_runs WHERE id=?", (run_id,)))

"""Runs and their per-checkpoint results."""
from __future__ import annotations

from collections.abc import Iterable

from core.facts import FINISHED, Outcome, RunStatus
from core.records import CheckpointResult, Run
from store.db import Repository, dump, load_row

RESULT_FIELDS = frozenset({"status", "started_at", "finished_at", "duration", "plan",
                           "fingerprint", "error"})
RUN_FIELDS = frozenset({"status", "error", "failed_checkpoint", "options"})


def _result(row) -> CheckpointResult:
    data = load_row(row, ("plan",))
    data["status"] = Outcome(data["status"])
    return CheckpointResult(**data)


class RunRecords(Repository):
    """Runs and their checkpoint results."""

    def create_run(self, mode: str, selection: list[str], requester: str, source: str,
                   options: dict | None = None,
                   status: RunStatus = RunStatus.RUNNING) -> Run:
        now = self.clock.time()
        run_id = self.new_id("run")
        with self.db.transaction() as c:
            c.execute("INSERT INTO runs (id, mode, status, requester, source, selection, options,"
                      " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                      (run_id, mode, str(status), requester, source, dump(list(selection)),
                       dump(options or {}), now, now))
            for name in selection:
                c.execute("INSERT INTO checkpoint_results (run_id, checkpoint, status)"
                          " VALUES (?,?,?)", (run_id, name, str(Outcome.PENDING)))
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run | None:
        row = load_row(self.db.query_one("SELECT * FROM runs WHERE id=?", (run_id,)),
                       ("selection", "options"))
        if row is None:
            return None
        order = {name: i for i, name in enumerate(row["selection"])}
        results = sorted((_result(r) for r in self.db.query(
            "SELECT * FROM checkpoint_results WHERE run_id=?", (run_id,))),
            key=lambda r: order.get(r.checkpoint, len(order)))
        return Run(**{**row, "status": RunStatus(row["status"]),
                      "selection": tuple(row["selection"]), "checkpoints": tuple(results)})

    def list_runs(self, limit: int = 50, statuses: Iterable[str] | None = None) -> list[Run]:
        sql, params = "SELECT id FROM runs", []
        if statuses:
            statuses = [str(s) for s in statuses]
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
            params += statuses
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        return [self.get_run(r["id"]) for r in self.db.query(sql, params + [limit])]

    def latest_run(self) -> Run | None:
        runs = self.list_runs(limit=1)
        return runs[0] if runs else None

    def update_run(self, run_id: str, **fields) -> None:
        unknown = set(fields) - RUN_FIELDS
        if unknown:
            raise ValueError(f"not run fields: {sorted(unknown)}")
        fields["updated_at"] = self.clock.time()
        if "status" in fields:
            fields["status"] = str(fields["status"])
            finished = RunStatus(fields["status"]) in FINISHED
            fields.setdefault("finished_at", fields["updated_at"] if finished else None)
        if "options" in fields:
            fields["options"] = dump(fields["options"])
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id=?", (*fields.values(), run_id))

    def set_run_status_if(self, run_id: str, allowed_from: Iterable[str], **fields) -> bool:
        """Compare-and-set the run status; False if the run is not in one of ``allowed_from``."""
        allowed_from = {str(s) for s in allowed_from}
        with self.db.transaction() as c:
            row = c.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None or row["status"] not in allowed_from:
                return False
            self.update_run(run_id, **fields)
            return True

    def update_result(self, run_id: str, checkpoint: str, **fields) -> None:
        unknown = set(fields) - RESULT_FIELDS
        if unknown:
            raise ValueError(f"not checkpoint result fields: {sorted(unknown)}")
        if "status" in fields:
            fields["status"] = str(fields["status"])
        if fields.get("plan") is not None:
            fields["plan"] = dump(fields["plan"])
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as c:
            c.execute(f"UPDATE checkpoint_results SET {cols} WHERE run_id=? AND checkpoint=?",
                      (*fields.values(), run_id, checkpoint))

    def last_result(self, checkpoint: str) -> CheckpointResult | None:
        row = self.db.query_one(
            "SELECT r.* FROM checkpoint_results r JOIN runs ON runs.id=r.run_id"
            " WHERE r.checkpoint=? AND r.status!=?"
            " ORDER BY COALESCE(r.finished_at, r.started_at) DESC LIMIT 1",
            (checkpoint, str(Outcome.PENDING)))
        return _result(row) if row else None

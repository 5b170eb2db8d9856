"""Small keyed records (cluster layout, Serve app ownership) and the records of the processes
the local and ssh platforms started (apps, jobs, job runs). What a platform records beyond
the columns every platform has (the ssh platform: the host of an app, the hosts of a run)
is kept as it gave it, in one JSON column, and read back as keys of the record."""
from __future__ import annotations

import json
from typing import Any

from store.db import Repository, dump, load_row


class KeyValue(Repository):
    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.query_one("SELECT value FROM kv WHERE key=?", (key,))
        return json.loads(row["value"]) if row else default

    def set(self, key: str, value: Any) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?)",
                      (key, dump(value), self.clock.time()))

    def delete(self, key: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM kv WHERE key=?", (key,))


APP_COLUMNS = ("id", "name", "spec", "pid", "pid_start", "status", "created_at", "stopped_at")
RUN_COLUMNS = ("id", "job_id", "spec_hash", "status", "pid", "pid_start", "exit_code",
               "log_path", "created_at", "finished_at")


def _extra(record: dict, columns: tuple[str, ...]) -> str | None:
    """The keys of ``record`` that no column holds, as JSON (None when there are none)."""
    extra = {k: v for k, v in record.items() if k not in columns}
    return dump(extra) if extra else None


def _record(row, json_columns: tuple[str, ...]) -> dict | None:
    record = load_row(row, (*json_columns, "extra"))
    if record is not None:
        record.update(record.pop("extra") or {})
    return record


class PlatformRecords(Repository):
    """Rows of the platforms that keep their own records (plain dicts: they never leave
    cluster/platforms/)."""

    def put_app(self, app: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_apps (id, name, spec, pid, pid_start, "
                      "status, created_at, stopped_at, extra) VALUES (?,?,?,?,?,?,?,?,?)",
                      (app["id"], app["name"], dump(app["spec"]), app.get("pid"),
                       app.get("pid_start"), app["status"], app["created_at"], app.get("stopped_at"),
                       _extra(app, APP_COLUMNS)))

    def apps(self) -> list[dict]:
        return [_record(r, ("spec",)) for r in
                self.db.query("SELECT * FROM platform_apps ORDER BY created_at")]

    def app(self, app_id: str) -> dict | None:
        return _record(self.db.query_one("SELECT * FROM platform_apps WHERE id=?", (app_id,)),
                       ("spec",))

    def delete_app(self, app_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM platform_apps WHERE id=?", (app_id,))

    def put_job(self, job: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_jobs VALUES (?,?,?,?,?)",
                      (job["id"], job["name"], dump(job["spec"]), job["created_at"],
                       job["updated_at"]))

    def jobs(self) -> list[dict]:
        return [load_row(r, ("spec",)) for r in
                self.db.query("SELECT * FROM platform_jobs ORDER BY created_at")]

    def put_run(self, run: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_job_runs (id, job_id, spec_hash, status, "
                      "pid, pid_start, exit_code, log_path, created_at, finished_at, extra) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (run["id"], run["job_id"], run["spec_hash"], run["status"], run.get("pid"),
                       run.get("pid_start"), run.get("exit_code"), run.get("log_path"),
                       run["created_at"], run.get("finished_at"), _extra(run, RUN_COLUMNS)))

    def runs(self, job_id: str) -> list[dict]:
        return [_record(r, ()) for r in self.db.query(
            "SELECT * FROM platform_job_runs WHERE job_id=? ORDER BY created_at DESC, rowid DESC",
            (job_id,))]

    def run(self, run_id: str) -> dict | None:
        return _record(self.db.query_one("SELECT * FROM platform_job_runs WHERE id=?", (run_id,)),
                       ())

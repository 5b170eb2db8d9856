"""Small keyed records (cluster layout, Serve app ownership) and the records of the processes
the local and ssh platforms started (apps, jobs, job runs; on ssh with their hosts)."""
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


class PlatformRecords(Repository):
    """Rows of the platforms that keep their own records (plain dicts: they never leave
    cluster/platforms/)."""

    def put_app(self, app: dict) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO platform_apps (id, name, spec, pid, pid_start, "
                      "status, created_at, stopped_at, host) VALUES (?,?,?,?,?,?,?,?,?)",
                      (app["id"], app["name"], dump(app["spec"]), app.get("pid"),
                       app.get("pid_start"), app["status"], app["created_at"], app.get("stopped_at"),
                       app.get("host")))

    def apps(self) -> list[dict]:
        return [load_row(r, ("spec",)) for r in
                self.db.query("SELECT * FROM platform_apps ORDER BY created_at")]

    def app(self, app_id: str) -> dict | None:
        return load_row(self.db.query_one("SELECT * FROM platform_apps WHERE id=?", (app_id,)),
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
                      "pid, pid_start, exit_code, log_path, created_at, finished_at, hosts) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (run["id"], run["job_id"], run["spec_hash"], run["status"], run.get("pid"),
                       run.get("pid_start"), run.get("exit_code"), run.get("log_path"),
                       run["created_at"], run.get("finished_at"),
                       dump(run["hosts"]) if run.get("hosts") is not None else None))

    def runs(self, job_id: str) -> list[dict]:
        return [load_row(r, ("hosts",)) for r in self.db.query(
            "SELECT * FROM platform_job_runs WHERE job_id=? ORDER BY created_at DESC, rowid DESC",
            (job_id,))]

    def run(self, run_id: str) -> dict | None:
        return load_row(self.db.query_one("SELECT * FROM platform_job_runs WHERE id=?", (run_id,)),
                        ("hosts",))

"""Aggregates the control plane's /metrics reads at scrape time (one query each)."""
from __future__ import annotations

from store.db import Repository


class MetricsQueries(Repository):
    def run_counts(self) -> dict[str, int]:
        """Runs by status."""
        return {r["status"]: r["n"] for r in
                self.db.query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")}

    def checkpoint_durations(self) -> list[tuple[str, str, float]]:
        """(checkpoint, outcome, seconds) of every finished checkpoint result."""
        return [(r["checkpoint"], r["status"], r["duration"]) for r in self.db.query(
            "SELECT checkpoint, status, duration FROM checkpoint_results "
            "WHERE duration IS NOT NULL")]

    def gate_waits(self) -> list[tuple[str, float]]:
        """(checkpoint, seconds from request to decision) of every closed approval request."""
        return [(r["checkpoint"], r["wait"]) for r in self.db.query(
            "SELECT checkpoint, closed_at - created_at AS wait FROM approval_requests "
            "WHERE closed_at IS NOT NULL")]

    def pending_approvals(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM approval_requests WHERE closed_at IS NULL")
        return row["n"]

    def approval_counts(self) -> list[tuple[str, str, int]]:
        """(decision, source, count) of every decision record."""
        return [(r["decision"], r["source"], r["n"]) for r in self.db.query(
            "SELECT decision, source, COUNT(*) AS n FROM approvals GROUP BY decision, source")]

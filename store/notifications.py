"""Notification deliveries: one row per (event, target), updated as attempts are made."""
from __future__ import annotations

import json

from core.records import Delivery
from store.db import Repository, dump


def _delivery(row) -> Delivery:
    return Delivery(id=row["id"], event=row["event"], target=row["target"], status=row["status"],
                    attempts=row["attempts"], created_at=row["created_at"],
                    updated_at=row["updated_at"], run_id=row["run_id"],
                    checkpoint=row["checkpoint"], last_error=row["last_error"],
                    payload=json.loads(row["payload"]))


class DeliveryRecords(Repository):
    def add_delivery(self, event: str, target: str, payload: dict, run_id: str | None = None,
                     checkpoint: str | None = None) -> Delivery:
        now = self.clock.time()
        delivery_id = self.new_id("dlv")
        with self.db.transaction() as c:
            c.execute("INSERT INTO deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (delivery_id, event, target, run_id, checkpoint, "pending", 0, None,
                       dump(payload), now, now))
        return self.get_delivery(delivery_id)

    def update_delivery(self, delivery_id: str, *, status: str, attempts: int,
                        last_error: str | None = None) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE deliveries SET status=?, attempts=?, last_error=?, updated_at=? "
                      "WHERE id=?", (status, attempts, last_error, self.clock.time(), delivery_id))

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = self.db.query_one("SELECT * FROM deliveries WHERE id=?", (delivery_id,))
        return _delivery(row) if row else None

    def earlier_pending(self, delivery: Delivery) -> bool:
        """Whether an earlier delivery of the same run to the same target is still pending."""
        return self.db.query_one(
            "SELECT 1 FROM deliveries WHERE run_id=? AND target=? AND status='pending' AND "
            "(created_at < ? OR (created_at = ? AND rowid < (SELECT rowid FROM deliveries "
            "WHERE id=?))) LIMIT 1", (delivery.run_id, delivery.target, delivery.created_at,
                                      delivery.created_at, delivery.id)) is not None

    def recent(self, limit: int = 50, status: str | None = None,
                   event: str | None = None) -> list[Delivery]:
        """Newest first."""
        where, params = [], []
        if status:
            where.append("status=?")
            params.append(status)
        if event:
            where.append("event=?")
            params.append(event)
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(where) if where else "")
        return [_delivery(r) for r in self.db.query(sql + " ORDER BY created_at DESC, rowid DESC "
                                                    "LIMIT ?", (*params, limit))]

    def delivery_counts(self) -> list[tuple[str, str, int]]:
        """(event, status, count) for /metrics."""
        return [(r["event"], r["status"], r["n"]) for r in self.db.query(
            "SELECT event, status, COUNT(*) AS n FROM deliveries GROUP BY event, status")]

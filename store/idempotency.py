"""Idempotency keys, scoped to who sent them, to which route, with which body: a repeat of
the same request gets the first answer; the same key with another body is refused."""
from __future__ import annotations

from dataclasses import dataclass

from store.db import Repository


@dataclass(frozen=True)
class IdempotentRequest:
    body_hash: str
    status: int | None  # None while the first request is still being answered
    response: str | None


class IdempotencyKeys(Repository):
    def claim(self, principal: str, route: str, key: str,
                              body_hash: str) -> IdempotentRequest | None:
        """None: the key is new and now claimed (answer, then ``answer_idempotency_key``);
        else the request that claimed it first."""
        with self.db.transaction() as c:
            row = c.execute("SELECT body_hash, status, response FROM idempotency WHERE"
                            " principal=? AND route=? AND key=?", (principal, route, key)).fetchone()
            if row is not None:
                return IdempotentRequest(row["body_hash"], row["status"], row["response"])
            c.execute("INSERT INTO idempotency (principal, route, key, body_hash, created_at)"
                      " VALUES (?,?,?,?,?)", (principal, route, key, body_hash, self.clock.time()))
        return None

    def answer(self, principal: str, route: str, key: str, status: int,
                               response: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE idempotency SET status=?, response=? WHERE principal=? AND route=?"
                      " AND key=?", (status, response, principal, route, key))

    def release(self, principal: str, route: str, key: str) -> None:
        """The first request failed: the key may be used again."""
        with self.db.transaction() as c:
            c.execute("DELETE FROM idempotency WHERE principal=? AND route=? AND key=?",
                      (principal, route, key))

"""The cluster lease: one run (or operation) at a time per cluster."""
from __future__ import annotations

import os
import socket
import time

from core.errors import Conflict
from core.records import Lease
from store.db import Repository


class LeaseHeld(Conflict):
    """Another live process holds the cluster lease."""

    def __init__(self, lease: Lease):
        self.lease = lease
        super().__init__(
            f"another run ({lease.run_id or 'no run'}) holds the cluster lease: "
            f"holder {lease.holder}, pid {lease.pid} on {lease.host}, "
            f"until {time.strftime('%H:%M:%S', time.localtime(lease.expires_at))}; "
            f"wait for it to finish (or for its lease to expire if it crashed)")


def pid_alive(pid: int | None) -> bool:
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


def _lease(row) -> Lease | None:
    return Lease(**dict(row)) if row is not None else None


class Leases(Repository):
    def acquire_lease(self, holder: str, run_id: str | None, ttl: float = 30.0,
                      name: str = "cluster") -> Lease | None:
        """Take the lease or raise LeaseHeld. Returns the previous holder's lease when it
        was taken over from a dead holder."""
        now = self.clock.time()
        host, pid = socket.gethostname(), os.getpid()
        with self.db.transaction() as c:
            row = _lease(c.execute("SELECT * FROM leases WHERE name=?", (name,)).fetchone())
            if row is not None and row.holder != holder and not self._lease_dead(row, now):
                raise LeaseHeld(row)
            c.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?)",
                      (name, holder, run_id, pid, host, now, now + ttl))
        return row if row is not None and row.holder != holder else None

    def _lease_dead(self, lease: Lease, now: float) -> bool:
        if lease.expires_at < now:
            return True
        # A holder on this machine whose process is gone is dead now, not at expiry.
        return lease.host == socket.gethostname() and not pid_alive(lease.pid)

    def current_lease(self, name: str = "cluster") -> Lease | None:
        row = _lease(self.db.query_one("SELECT * FROM leases WHERE name=?", (name,)))
        if row is None or self._lease_dead(row, self.clock.time()):
            return None
        return row

    def renew_lease(self, holder: str, ttl: float = 30.0, name: str = "cluster",
                    run_id: str | None = None) -> bool:
        with self.db.transaction() as c:
            sets, params = "expires_at=?", [self.clock.time() + ttl]
            if run_id is not None:
                sets += ", run_id=?"
                params.append(run_id)
            cur = c.execute(f"UPDATE leases SET {sets} WHERE name=? AND holder=?",
                            (*params, name, holder))
            return cur.rowcount == 1

    def clear_leases(self) -> None:
        """Forget every lease: for a process that owns the store (no one else can hold one)."""
        with self.db.transaction() as c:
            c.execute("DELETE FROM leases")

    def release_lease(self, holder: str, name: str = "cluster") -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

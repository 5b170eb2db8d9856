"""SQLite plumbing: one file per state dir, a connection per thread, a schema version.

On a local disk the CLI and the API server open the same file at once: WAL lets readers run
beside the one writer; every write goes through ``transaction()`` (BEGIN IMMEDIATE), so two
processes never interleave a read-modify-write, and ``busy_timeout`` makes the loser wait
instead of failing. On a network filesystem WAL does not work (SQLite's docs: it needs shared
memory on one host): the store keeps a rollback journal there, and a control plane that owns
its store (store/ownership.py) makes itself the only process that writes it.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import Unavailable

SCHEMA_VERSION = 6

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, mode TEXT NOT NULL, status TEXT NOT NULL, requester TEXT NOT NULL,
    source TEXT NOT NULL, selection TEXT NOT NULL, options TEXT NOT NULL, error TEXT,
    failed_checkpoint TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS checkpoint_results (
    run_id TEXT NOT NULL REFERENCES runs(id), checkpoint TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL, finished_at REAL, duration REAL, plan TEXT, fingerprint TEXT, error TEXT,
    PRIMARY KEY (run_id, checkpoint)
);
CREATE TABLE IF NOT EXISTS approval_requests (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, checkpoint TEXT NOT NULL, fingerprint TEXT NOT NULL,
    plan TEXT NOT NULL, destructive INTEGER NOT NULL, reasons TEXT NOT NULL, requester TEXT NOT NULL,
    created_at REAL NOT NULL, closed_at REAL, breaking INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, checkpoint TEXT NOT NULL, plan_fingerprint TEXT NOT NULL, run_id TEXT,
    decision TEXT NOT NULL, approver TEXT NOT NULL, requester TEXT, reason TEXT,
    acknowledge_risks INTEGER NOT NULL, source TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL, revokes TEXT, claimed_by TEXT,
    acknowledge_breaking INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS approvals_by_plan ON approvals (checkpoint, plan_fingerprint);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, kind TEXT NOT NULL, checkpoint TEXT,
    message TEXT NOT NULL, data TEXT, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, principal TEXT NOT NULL,
    claimed_name TEXT, source TEXT NOT NULL, client_address TEXT, action TEXT NOT NULL,
    target TEXT NOT NULL, plan_fingerprint TEXT, run_id TEXT, result TEXT NOT NULL,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    principal TEXT NOT NULL, route TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
    status INTEGER, response TEXT, created_at REAL NOT NULL,
    PRIMARY KEY (principal, route, key)
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, run_id TEXT, pid INTEGER, host TEXT,
    acquired_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS platform_apps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, pid INTEGER,
    pid_start TEXT, status TEXT NOT NULL, created_at REAL NOT NULL, stopped_at REAL,
    extra TEXT
);
CREATE TABLE IF NOT EXISTS platform_jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS platform_job_runs (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, spec_hash TEXT NOT NULL, status TEXT NOT NULL,
    pid INTEGER, pid_start TEXT, exit_code INTEGER, log_path TEXT, created_at REAL NOT NULL,
    finished_at REAL, extra TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, target TEXT NOT NULL, run_id TEXT,
    checkpoint TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,
    payload TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (created_at);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
"""

# Changes to tables that already exist in an older store, by the version they lead to.
MIGRATIONS = {
    2: ["ALTER TABLE approvals ADD COLUMN claimed_by TEXT"],
    3: ["ALTER TABLE approval_requests ADD COLUMN breaking INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE approvals ADD COLUMN acknowledge_breaking INTEGER NOT NULL DEFAULT 0"],
    # the audit chain is keyed (HMAC): no table changes; the events of an older store are
    # chained again with the key the first time it is keyed (store.events.AuditLog), and a
    # tool of version 3 refuses this store instead of appending plainly hashed events to it
    4: [],
    # the ssh platform's records: the host an app runs on, the hosts of a job run (JSON)
    5: ["ALTER TABLE platform_apps ADD COLUMN host TEXT",
        "ALTER TABLE platform_job_runs ADD COLUMN hosts TEXT"],
    # what a platform records beside the columns every platform has (the ssh platform's
    # host of an app, hosts of a job run) is the platform's: one JSON column, ``extra``
    6: ["ALTER TABLE platform_apps ADD COLUMN extra TEXT",
        "UPDATE platform_apps SET extra = json_object('host', host) WHERE host IS NOT NULL",
        "ALTER TABLE platform_apps DROP COLUMN host",
        "ALTER TABLE platform_job_runs ADD COLUMN extra TEXT",
        "UPDATE platform_job_runs SET extra = json_object('hosts', json(hosts)) "
        "WHERE hosts IS NOT NULL",
        "ALTER TABLE platform_job_runs DROP COLUMN hosts"],
}
# (stores made before 2026-12 keep an approvals.idempotency_key column nobody writes: SQLite
# cannot drop a UNIQUE column, and rebuilding the table for it is not worth a migration)


def _migrate(conn: sqlite3.Connection, statement: str) -> None:
    """One migration statement; a column it adds that is there already counts as added, and
    one it moves or drops that is gone already counts as dropped."""
    try:
        conn.execute(statement)
    except sqlite3.OperationalError as e:
        if "duplicate column name" not in str(e) and "no such column" not in str(e):
            raise


def dump(value: Any) -> str:
    """Canonical JSON for a JSON column."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def load_row(row: sqlite3.Row | None, json_columns: tuple[str, ...] = (),
             bool_columns: tuple[str, ...] = ()) -> dict | None:
    """A row as a dict, decoding exactly the columns that hold JSON (and SQLite's 0/1)."""
    if row is None:
        return None
    out = dict(row)
    for key in json_columns:
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    for key in bool_columns:
        if key in out:
            out[key] = bool(out[key])
    return out


def create_private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (the store holds approval history).

    An existing file is never opened here: closing any descriptor of a database file drops
    every POSIX lock this process holds on it, including other connections' (SQLite's
    documented way to corrupt a database)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    except FileExistsError:
        pass


class Database:
    def __init__(self, path: Path, wal: bool = True, before_write=lambda: None,
                 exclusive: bool = False):
        """``wal``: WAL journal (else a rollback journal); ``exclusive``: this process is the
        file's only user (a control plane that owns its store): one connection, shared by
        every thread under a lock, holds SQLite's lock for good (locking_mode EXCLUSIVE),
        so no other process can read or write behind it and no lock of the filesystem is
        asked for again; ``before_write``: raises when this process may no longer write
        (it lost the store's ownership)."""
        self.path = Path(path)
        self.journal = "WAL" if wal and not exclusive else "DELETE"
        self.exclusive = exclusive
        self.before_write = before_write
        create_private_file(self.path)
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # the shared connection: one statement or transaction at a time
        try:
            self._open()
        except sqlite3.DatabaseError as e:  # not a database, corrupted, read-only, disk full
            raise StoreUnavailable(f"state store {self.path} cannot be used: {e}") from None

    def _open(self) -> None:
        with self._guard():
            # executescript commits by itself, so the idempotent DDL runs outside a transaction.
            self.connection().executescript(SCHEMA)
            with self.transaction() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
                if version is not None and version > SCHEMA_VERSION:
                    raise StoreUnavailable(
                        f"state store {self.path} has schema version {version}, newer than "
                        f"this tool's {SCHEMA_VERSION}: upgrade the tool")
                if version is not None:
                    for target in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS.get(target, []):
                            _migrate(conn, statement)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def _in_transaction(self) -> bool:
        conn = self._shared if self.exclusive else getattr(self._local, "conn", None)
        return conn is not None and conn.in_transaction

    def _guard(self):
        return self._lock if self.exclusive else contextlib.nullcontext()

    def connection(self) -> sqlite3.Connection:
        if self.exclusive:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        if self.exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        # with the lock held for good, the journal is truncated rather than deleted each time
        conn.execute(f"PRAGMA journal_mode={'TRUNCATE' if self.exclusive else self.journal}")
        # WAL is durable with NORMAL; a rollback journal needs FULL
        conn.execute("PRAGMA synchronous=" + ("NORMAL" if self.journal == "WAL" else "FULL"))
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextlib.contextmanager
    def transaction(self):
        """A write transaction taken up front (BEGIN IMMEDIATE), committed on success."""
        with self._guard():
            if not self._in_transaction():
                self.before_write()
            conn = self.connection()
            if conn.in_transaction:  # nested: join the outer transaction
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                raise  # a constraint the caller relies on (e.g. a unique key)
            except sqlite3.DatabaseError as e:  # read-only, disk full, corrupted: nothing written
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(f"state store {self.path}: {e}") from None

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._guard(), self._failures_named():
            return self.connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params=()) -> sqlite3.Row | None:
        with self._guard(), self._failures_named():
            return self.connection().execute(sql, params).fetchone()

    def rows(self, sql: str, params=()) -> Iterator[sqlite3.Row]:
        """The rows, one by one as they are read (an export streams); with one shared
        connection, read at once (a cursor left open would see other threads' statements)."""
        if self.exclusive:
            yield from self.query(sql, params)
            return
        with self._failures_named():
            yield from self.connection().execute(sql, params)

    @contextlib.contextmanager
    def _failures_named(self):
        """A damaged or unreadable store is StoreUnavailable (one line), not a traceback."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as e:
            raise StoreUnavailable(f"state store {self.path}: {e}") from None

    def schema_version(self) -> int:
        return int(self.query_one("SELECT value FROM meta WHERE key='schema_version'")[0])

    def close(self) -> None:
        conn = self._shared if self.exclusive else getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        if self.exclusive:
            self._shared = None
        else:
            self._local.conn = None


class StoreUnavailable(Unavailable):
    """The state store cannot be read or written (corrupted, read-only, disk full)."""


class Repository:
    """One kind of record in the store's database: its own methods, on the shared file."""

    def __init__(self, db: Database, clock):
        self.db, self.clock = db, clock

    @staticmethod
    def new_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

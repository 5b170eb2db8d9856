"""SQLite plumbing: the schema version and its migrations, write transactions (all or nothing,
nested ones joined), failures named in one line, and the helpers for JSON columns."""
import json
import os
import sqlite3
import stat
import threading

import pytest

from store import Store
from store.db import (
    SCHEMA_VERSION,
    Database,
    StoreUnavailable,
    create_private_file,
    dump,
    load_row,
)


class Boom(Exception):
    pass


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def columns(db: Database, table: str) -> set[str]:
    return {row["name"] for row in db.query(f"PRAGMA table_info({table})")}


def kv_keys(db: Database) -> list[str]:
    return [row["key"] for row in db.query("SELECT key FROM kv ORDER BY key")]


def set_version(path, version: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    conn.close()


# -- the schema and its versions -------------------------------------------------------------
def test_a_store_of_a_newer_tool_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "state.db"
    Database(path).close()
    set_version(path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreUnavailable, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Database(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == \
            (str(SCHEMA_VERSION + 1),)
    conn.close()


def test_a_store_of_version_4_keeps_its_platform_records(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:  # the two tables as version 4 made them
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '4');
            CREATE TABLE platform_apps (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                spec TEXT NOT NULL, pid INTEGER, pid_start TEXT, status TEXT NOT NULL,
                created_at REAL NOT NULL, stopped_at REAL);
            INSERT INTO platform_apps VALUES ('a1', 'rd-head', '{}', 1, 'x', 'running', 1.0, NULL);
            CREATE TABLE platform_job_runs (id TEXT PRIMARY KEY, job_id TEXT NOT NULL,
                spec_hash TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER, pid_start TEXT,
                exit_code INTEGER, log_path TEXT, created_at REAL NOT NULL, finished_at REAL);
        """)
    conn.close()
    db = Database(path)
    assert db.schema_version() == SCHEMA_VERSION
    assert "extra" in columns(db, "platform_apps") and "extra" in columns(db, "platform_job_runs")
    assert dict(db.query_one("SELECT name, pid, extra FROM platform_apps")) == \
        {"name": "rd-head", "pid": 1, "extra": None}  # the rows it had are kept
    db.close()


def test_the_ssh_hosts_of_a_version_5_store_become_its_records_own_keys(tmp_path):
    path = tmp_path / "state"
    Store(path).close()
    with sqlite3.connect(path / "state.db") as conn:  # as version 5 made the two tables
        conn.executescript("""
            UPDATE meta SET value='5' WHERE key='schema_version';
            ALTER TABLE platform_apps DROP COLUMN extra;
            ALTER TABLE platform_apps ADD COLUMN host TEXT;
            INSERT INTO platform_apps VALUES ('a1', 'rd-head', '{}', 1, 'x', 'running', 1.0,
                                              NULL, 'w1');
            INSERT INTO platform_apps VALUES ('a2', 'rd-local', '{}', 2, 'y', 'running', 2.0,
                                              NULL, NULL);
            ALTER TABLE platform_job_runs DROP COLUMN extra;
            ALTER TABLE platform_job_runs ADD COLUMN hosts TEXT;
            INSERT INTO platform_job_runs VALUES ('r1', 'j1', 'h', 'running', NULL, NULL, NULL,
                                                  NULL, 1.0, NULL, '{"w1":{"pid":7}}');
        """)
    conn.close()
    store = Store(path)
    assert store.db.schema_version() == SCHEMA_VERSION
    assert {"host", "hosts"}.isdisjoint(columns(store.db, "platform_apps") |
                                        columns(store.db, "platform_job_runs"))
    assert store.platform_records.app("a1")["host"] == "w1"
    assert "host" not in store.platform_records.app("a2")
    assert store.platform_records.run("r1")["hosts"] == {"w1": {"pid": 7}}
    store.close()


def test_a_migration_whose_column_is_there_already_counts_as_done(tmp_path):
    path = tmp_path / "state.db"
    Database(path).close()
    set_version(path, 1)  # every migration runs again, on columns that exist
    db = Database(path)
    assert db.schema_version() == SCHEMA_VERSION
    assert {"claimed_by", "acknowledge_breaking"} <= columns(db, "approvals")
    db.close()


def test_a_file_that_is_not_a_database_is_one_error_naming_it(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreUnavailable) as refused:
        Database(path)
    assert str(path) in str(refused.value) and "cannot be used" in str(refused.value)


# -- transactions ----------------------------------------------------------------------------
def test_a_transaction_that_raises_writes_nothing(db):
    with pytest.raises(Boom), db.transaction() as conn:
        conn.execute("INSERT INTO kv VALUES ('a', '1', 0)")
        raise Boom()
    assert kv_keys(db) == []
    with db.transaction() as conn:
        conn.execute("INSERT INTO kv VALUES ('b', '1', 0)")
    assert kv_keys(db) == ["b"]


def test_a_nested_transaction_joins_the_outer_one_and_falls_with_it(db):
    with pytest.raises(Boom), db.transaction() as outer:
        outer.execute("INSERT INTO kv VALUES ('outer', '1', 0)")
        with db.transaction() as inner:
            assert inner is outer
            inner.execute("INSERT INTO kv VALUES ('inner', '1', 0)")
        assert outer.in_transaction  # the inner block did not commit it
        raise Boom()
    assert kv_keys(db) == []


def test_a_broken_constraint_is_raised_as_itself_and_rolled_back(db):
    with pytest.raises(sqlite3.IntegrityError), db.transaction() as conn:
        conn.execute("INSERT INTO kv VALUES ('a', '1', 0)")
        conn.execute("INSERT INTO kv VALUES ('a', '2', 0)")
    assert kv_keys(db) == [] and not db.connection().in_transaction


def test_each_outermost_write_asks_first_whether_this_process_may_still_write(tmp_path):
    asked, allowed = [], [True]

    def before_write():
        asked.append(1)
        if not allowed[0]:
            raise Boom("lost the store")
    db = Database(tmp_path / "state.db", before_write=before_write)
    asked.clear()
    with db.transaction() as conn, db.transaction():
        conn.execute("INSERT INTO kv VALUES ('a', '1', 0)")
    db.query("SELECT * FROM kv")  # reads do not ask
    assert len(asked) == 1
    allowed[0] = False
    with pytest.raises(Boom), db.transaction() as conn:
        conn.execute("INSERT INTO kv VALUES ('b', '1', 0)")
    assert kv_keys(db) == ["a"]
    db.close()


def test_every_thread_has_its_own_connection_unless_the_store_is_exclusive(tmp_path):
    def from_another_thread(db):
        seen = []
        thread = threading.Thread(target=lambda: seen.append(db.connection()))
        thread.start()
        thread.join()
        return seen[0]
    shared = Database(tmp_path / "a.db")
    assert from_another_thread(shared) is not shared.connection()
    assert shared.journal == "WAL"
    shared.close()
    exclusive = Database(tmp_path / "b.db", exclusive=True)
    assert from_another_thread(exclusive) is exclusive.connection()
    assert exclusive.journal == "DELETE"  # no WAL for the store's one user
    exclusive.close()


def test_a_closed_database_opens_a_connection_again_when_used(db):
    with db.transaction() as conn:
        conn.execute("INSERT INTO kv VALUES ('a', '1', 0)")
    db.close()
    assert kv_keys(db) == ["a"]


# -- helpers ---------------------------------------------------------------------------------
def test_json_is_written_canonically():
    assert dump({"b": [1, {"d": 2, "c": 3}], "a": None}) == '{"a":null,"b":[1,{"c":3,"d":2}]}'
    assert dump({"x": 1, "y": 2}) == dump({"y": 2, "x": 1})


def test_only_the_columns_named_are_decoded(db):
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (spec TEXT, note TEXT, flag INTEGER, empty TEXT)")
        conn.execute("INSERT INTO t VALUES (?, ?, 1, NULL)",
                     (json.dumps({"a": 1}), json.dumps(["looks", "like", "json"])))
    row = load_row(db.query_one("SELECT * FROM t"), ("spec", "empty"), ("flag",))
    assert row == {"spec": {"a": 1}, "note": '["looks", "like", "json"]', "flag": True,
                   "empty": None}
    assert load_row(None, ("spec",)) is None


def test_a_private_file_is_made_0600_and_an_existing_one_is_never_touched(tmp_path):
    made = tmp_path / "new" / "state.db"
    create_private_file(made)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
    existing = tmp_path / "existing.db"
    existing.write_text("kept")
    existing.chmod(0o640)
    create_private_file(existing)
    assert existing.read_text() == "kept" and stat.S_IMODE(existing.stat().st_mode) == 0o640

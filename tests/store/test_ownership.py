"""One writer per store: a control plane owns its store; a second is refused, a dead one's
claim is taken over, and an owner that lost its claim stops writing."""
import json
import sqlite3
import time

import pytest

from store import Store, StoreOwned, ownership
from store.ownership import STALE_SECONDS, filesystem_type


@pytest.fixture
def on_nfs(monkeypatch):
    """The state dir is on a network filesystem (as the project's is on CML)."""
    monkeypatch.setattr(ownership, "filesystem_type", lambda path: "nfs4")


def test_a_second_owner_is_refused_with_who_owns_the_store(tmp_path):
    first = Store(tmp_path / "state", owned=True)
    with pytest.raises(StoreOwned) as refused:
        Store(tmp_path / "state", owned=True)
    message = str(refused.value)
    assert "owned by another control plane" in message and "pid" in message
    first.kv.set("still", "writable")
    assert first.kv.get("still") == "writable"
    first.close()
    Store(tmp_path / "state", owned=True).close()  # free again


def test_a_store_its_control_plane_owns_is_refused_to_others_at_once(tmp_path):
    owner = Store(tmp_path / "state", owned=True)
    started = time.monotonic()
    with pytest.raises(StoreOwned, match="--server"):
        Store(tmp_path / "state")  # the CLI in embedded mode, say
    assert time.monotonic() - started < 1  # not after a lock's timeout
    owner.close()
    Store(tmp_path / "state").kv.set("free", True)  # no owner: usable as before


def test_an_owned_store_keeps_a_rollback_journal(tmp_path):
    store = Store(tmp_path / "state", owned=True)
    store.kv.set("k", 1)
    mode = store.db.query_one("PRAGMA journal_mode")[0]
    assert mode == "truncate"
    assert not (tmp_path / "state" / "state.db-wal").exists()
    assert Store(tmp_path / "local").db.query_one("PRAGMA journal_mode")[0] == "wal"
    store.close()


def test_a_claim_nobody_renewed_is_taken_over_and_its_old_owner_stops_writing(tmp_path):
    old = Store(tmp_path / "state", owned=True)
    record = json.loads(old.ownership.path.read_text())
    record.update(renewed_at=time.time() - STALE_SECONDS - 1, host="a-pod-that-died")
    old.ownership.path.write_text(json.dumps(record))
    old.db.close()  # its process died: its lock on the file went with it
    new = Store(tmp_path / "state", owned=True)  # the dead owner's claim: taken over
    new.kv.set("who", "new")
    assert old.ownership.renew() is False  # its next renewal finds the claim gone
    with pytest.raises(StoreOwned, match="took the store"):
        old.kv.set("who", "old")
    assert new.kv.get("who") == "new"
    new.close()


def test_the_filesystem_type_of_a_path():
    assert filesystem_type("/proc/self") == "proc"
    assert filesystem_type("/") != ""


def test_on_a_network_filesystem_even_a_store_nobody_owns_keeps_a_rollback_journal(tmp_path,
                                                                                    on_nfs):
    cli = Store(tmp_path / "state")  # the CLI in embedded mode: WAL on a local disk
    cli.kv.set("k", 1)
    assert cli.db.query_one("PRAGMA journal_mode")[0] == "delete"
    assert not (tmp_path / "state" / "state.db-wal").exists()
    cli.close()


def test_an_owned_store_on_a_network_filesystem_holds_its_lock_and_refuses_a_second_writer(
        tmp_path, on_nfs):
    owner = Store(tmp_path / "state", owned=True)
    owner.kv.set("k", 1)
    assert owner.db.query_one("PRAGMA journal_mode")[0] != "wal"
    assert owner.db.query_one("PRAGMA locking_mode")[0] == "exclusive"
    # a writer that bypasses the owner record (sqlite itself) finds the file locked at once
    other = sqlite3.connect(tmp_path / "state" / "state.db", timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        other.execute("BEGIN IMMEDIATE")
    other.close()
    with pytest.raises(StoreOwned, match="one process writes a store"):
        Store(tmp_path / "state", owned=True)
    assert owner.kv.get("k") == 1
    owner.close()

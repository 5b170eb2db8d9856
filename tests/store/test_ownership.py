"""One writer per store: a control plane owns its store; a second is refused, a dead one's
claim is taken over, and an owner that lost its claim stops writing."""
import json
import time

import pytest

from store import Store, StoreOwned
from store.ownership import STALE_SECONDS, filesystem_type


def test_a_second_owner_is_refused_with_who_owns_the_store(tmp_path):
    first = Store(tmp_path / "state", owned=True)
    with pytest.raises(StoreOwned) as refused:
        Store(tmp_path / "state", owned=True)
    message = str(refused.value)
    assert "owned by another control plane" in message and "pid" in message
    first.kv_set("still", "writable")
    assert first.kv_get("still") == "writable"
    first.close()
    Store(tmp_path / "state", owned=True).close()  # free again


def test_a_store_its_control_plane_owns_is_refused_to_others_at_once(tmp_path):
    owner = Store(tmp_path / "state", owned=True)
    started = time.monotonic()
    with pytest.raises(StoreOwned, match="--server"):
        Store(tmp_path / "state")  # the CLI in embedded mode, say
    assert time.monotonic() - started < 1  # not after a lock's timeout
    owner.close()
    Store(tmp_path / "state").kv_set("free", True)  # no owner: usable as before


def test_an_owned_store_keeps_a_rollback_journal(tmp_path):
    store = Store(tmp_path / "state", owned=True)
    store.kv_set("k", 1)
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
    new.kv_set("who", "new")
    assert old.ownership.renew() is False  # its next renewal finds the claim gone
    with pytest.raises(StoreOwned, match="took the store"):
        old.kv_set("who", "old")
    assert new.kv_get("who") == "new"
    new.close()


def test_the_filesystem_type_of_a_path():
    assert filesystem_type("/proc/self") == "proc"
    assert filesystem_type("/") != ""

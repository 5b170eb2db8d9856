"""Run events (read by run, after an id, by kind) and the keyed audit trail: filters, the head
that leaves the store, derived keys, and what verification finds."""
import pytest

from store import Store
from store.keys import AUDIT_KEY_ENV, KeyFileError
from tests.fakes import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock, monkeypatch):
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)  # the key is the state dir's own
    return Store(tmp_path / "state", clock=clock)


def audit(store, target, action="run.start", **kw):
    args = dict(principal="alice", source="cli", result="ok")
    args.update(kw)
    return store.audit_log.audit(action=action, target=target, **args)


# -- run events ------------------------------------------------------------------------------
def test_events_are_read_by_run_after_an_id_and_by_kind(store, clock):
    first = store.events.add_event("run.started", "started", run_id="r1", data={"n": 1})
    clock.advance(1)
    store.events.add_event("checkpoint.started", "cp", run_id="r1", checkpoint="head_launch")
    store.events.add_event("run.started", "other run", run_id="r2")
    store.events.add_event("run.finished", "done", run_id="r1")
    assert [e.message for e in store.events.read(run_id="r1")] == ["started", "cp", "done"]
    assert [e.message for e in store.events.read(run_id="r1", after_id=first)] == ["cp", "done"]
    assert [e.message for e in store.events.read(kind_prefix="run.")] == \
        ["started", "other run", "done"]
    assert [e.message for e in store.events.read(limit=2)] == ["started", "cp"]
    event = store.events.read(run_id="r1")[0]
    assert (event.id, event.data, event.created_at) == (first, {"n": 1}, clock.now - 1)
    assert store.events.read(run_id="r1")[1].checkpoint == "head_launch"


# -- the audit trail -------------------------------------------------------------------------
def test_an_audit_event_records_who_what_and_how_it_ended(store, clock):
    event = audit(store, "run-1", claimed_name="Al", client_address="10.0.0.9",
                  plan_fingerprint="fp", run_id="run-1", detail={"reason": "because"})
    (stored,) = store.audit_log.audit_events()
    assert stored == event
    assert (event.seq, event.created_at, event.prev_hash) == (1, clock.now, "0" * 64)
    assert event.detail == {"reason": "because"} and event.claimed_name == "Al"
    assert audit(store, "run-2").prev_hash == event.hash


def test_audit_events_are_filtered_and_an_action_matches_its_family(store, clock):
    audit(store, "run-1", action="run.start")
    clock.advance(10)
    audit(store, "worker_launch", action="approval.approve", principal="bob", run_id="run-1")
    audit(store, "worker_launch", action="approval.reject", principal="bob")
    audit(store, "approvals", action="approvals")  # another action, not of the family
    audit(store, "w-2", action="node.remove", principal="carol", run_id="run-1")

    def targets(**filters):
        return [(e.seq, e.action) for e in store.audit_log.audit_events(**filters)]
    assert targets(action="approval") == [(2, "approval.approve"), (3, "approval.reject")]
    assert targets(action="approval.reject") == [(3, "approval.reject")]
    assert targets(principal="bob", run_id="run-1") == [(2, "approval.approve")]
    assert targets(target="worker_launch", limit=1) == [(2, "approval.approve")]
    assert [s for s, _ in targets(since=clock.now)] == [2, 3, 4, 5]
    assert [s for s, _ in targets(after_seq=2, up_to_seq=4)] == [3, 4]


def test_the_head_is_where_the_trail_ends_now(store):
    assert store.audit_log.audit_head() is None
    audit(store, "a")
    last = audit(store, "b")
    assert store.audit_log.audit_head() == {"seq": 2, "hash": last.hash}


def test_an_event_and_the_change_it_records_are_written_together_or_not_at_all(store):
    audit(store, "before")  # the trail is keyed

    class Boom(Exception):
        pass
    with pytest.raises(Boom), store.db.transaction():
        store.kv.set("layout", {"port": 1})
        audit(store, "the change")
        raise Boom()
    assert store.kv.get("layout") is None
    assert [e.target for e in store.audit_log.audit_events()] == ["before"]
    assert store.audit_log.verify_audit() == (1, None, store.audit_log.audit_head())


def test_an_intact_trail_verifies_and_reaches_a_head_anchored_earlier(store):
    audit(store, "a")
    anchored = audit(store, "b").hash
    audit(store, "c")
    checked, problem, head = store.audit_log.verify_audit(expect_head=anchored)
    assert (checked, problem, head["seq"]) == (3, None, 3)


def test_a_trail_cut_by_the_keys_keeper_verifies_but_no_longer_reaches_the_anchored_head(store):
    from store.events import _head_mac
    audit(store, "a")
    kept = audit(store, "b")
    anchored = audit(store, "c").hash  # left the store with an export
    conn, key = store.db.connection(), store.audit_log.audit_key()
    conn.execute("DELETE FROM audit WHERE seq=3")
    conn.execute("UPDATE sqlite_sequence SET seq=2 WHERE name='audit'")
    conn.execute("UPDATE meta SET value=? WHERE key='audit_head'",
                 (f"2:{kept.hash}:{_head_mac(key, 2, kept.hash)}",))
    assert store.audit_log.verify_audit().problem is None  # the key vouches for the cut trail
    checked, problem, head = store.audit_log.verify_audit(expect_head=anchored)
    assert (checked, head["seq"]) == (2, 2)
    assert "does not reach the head" in problem and "ends at event 2" in problem


def test_an_empty_trail_does_not_reach_a_head_it_never_had(store):
    checked, problem, head = store.audit_log.verify_audit(expect_head="ab" * 32)
    assert (checked, head) == (0, None) and "does not reach the head" in problem


def test_an_altered_head_record_is_found(store):
    audit(store, "a")
    seq, event_hash, mac = store.db.query_one(
        "SELECT value FROM meta WHERE key='audit_head'")[0].split(":")
    store.db.connection().execute("UPDATE meta SET value=? WHERE key='audit_head'",
                                  (f"{seq}:{event_hash}:{'0' * len(mac)}",))
    assert store.audit_log.verify_audit().problem == "the trail's head record was altered"


def test_a_removed_head_record_is_found(store):
    audit(store, "a")
    store.db.connection().execute("DELETE FROM meta WHERE key='audit_head'")
    assert store.audit_log.verify_audit().problem == "the trail's head record is missing"


def test_a_trail_chained_with_a_key_that_is_gone_is_refused_and_no_key_is_made(store):
    audit(store, "a")
    key_file = store.state_dir / "audit.key"
    key_file.unlink()
    with pytest.raises(KeyFileError, match="is gone"):
        Store(store.state_dir).audit_log.verify_audit()
    assert not key_file.exists()


def test_a_trail_chained_with_another_key_is_refused(store, monkeypatch):
    audit(store, "a")
    monkeypatch.setenv(AUDIT_KEY_ENV, "another-key-0123456789")
    with pytest.raises(KeyFileError, match="another key"):
        audit(Store(store.state_dir), "b")
    assert [e.target for e in store.audit_log.audit_events()] == ["a"]


def test_derived_keys_differ_by_purpose_and_stay_the_same_for_the_deployment(store):
    seal = store.audit_log.derived_key("plan-seal")
    assert seal == Store(store.state_dir).audit_log.derived_key("plan-seal")
    assert seal != store.audit_log.derived_key("something-else")
    assert seal != store.audit_log.audit_key() and len(seal) == 32

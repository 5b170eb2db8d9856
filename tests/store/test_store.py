import multiprocessing
import os
import stat
import subprocess
import sys

import pytest

from store import LeaseHeld, Store
from store.db import SCHEMA_VERSION
from tests.fakes import FakeClock


def test_file_is_private_and_versioned(tmp_path):
    store = Store(tmp_path / "s")
    mode = stat.S_IMODE(os.stat(tmp_path / "s" / "state.db").st_mode)
    assert mode == 0o600
    assert store.db.schema_version() == SCHEMA_VERSION


def test_run_and_results_roundtrip(tmp_path):
    store = Store(tmp_path)
    run = store.runs.create_run("deploy", ["a", "b"], "alice", "cli", {"force": True})
    assert [r.checkpoint for r in run.checkpoints] == ["a", "b"]
    store.runs.update_result(run.id, "a", status="succeeded", duration=1.5, plan={"x": 1})
    store.runs.update_run(run.id, status="failed", error="boom")
    again = store.runs.get_run(run.id)
    assert again.status == "failed" and again.finished_at is not None
    assert again.checkpoints[0].plan == {"x": 1} and again.remaining == ["b"]
    assert again.options == {"force": True}


def test_only_json_columns_are_decoded(tmp_path):
    store = Store(tmp_path)
    run = store.runs.create_run("deploy", ["a"], "alice", "cli")
    store.runs.update_run(run.id, status="failed", error='{"looks": "like json"}')
    store.events.add_event("x", '["also", "json-looking"]')
    assert store.runs.get_run(run.id).error == '{"looks": "like json"}'
    assert store.events.read()[-1].message == '["also", "json-looking"]'


def test_approvals_are_append_only(tmp_path):
    store = Store(tmp_path)
    first = store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision="approved",
                               approver="bob", source="api")
    store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision="revoked", approver="eve",
                       source="api", revokes=first.id)
    assert len(store.approvals.decisions("c")) == 2 and store.approvals.revoked_ids() == {first.id}
    assert [e.kind for e in store.events.read()] == ["approval.approved", "approval.revoked"]


def test_idempotency_keys_are_scoped_to_caller_route_and_body(tmp_path):
    store = Store(tmp_path)
    assert store.idempotency.claim("alice", "POST /a", "k", "body1") is None
    again = store.idempotency.claim("alice", "POST /a", "k", "body1")
    assert again.body_hash == "body1" and again.status is None  # still being answered
    store.idempotency.answer("alice", "POST /a", "k", 201, '{"id": 1}')
    assert store.idempotency.claim("alice", "POST /a", "k", "body2").body_hash == "body1"
    # another caller, or another route, with the same key: a new request
    assert store.idempotency.claim("bob", "POST /a", "k", "body1") is None
    assert store.idempotency.claim("alice", "POST /b", "k", "body1") is None


def test_audit_events_are_chained_and_a_change_is_found(tmp_path):
    store = Store(tmp_path)
    for n in range(4):
        store.audit_log.audit(principal="alice", source="cli", action="run.start", target=f"run-{n}",
                    result="ok", detail={"n": n})
    assert store.audit_log.verify_audit()[:2] == (4, None)
    assert [e.target for e in store.audit_log.audit_events(after_seq=2)] == ["run-2", "run-3"]
    conn = store.db.connection()
    conn.execute("UPDATE audit SET principal='mallory' WHERE seq=2")
    checked, problem, _ = store.audit_log.verify_audit()
    assert checked == 1 and "event 2 was altered" in problem
    conn.execute("UPDATE audit SET principal='alice' WHERE seq=2")
    conn.execute("DELETE FROM audit WHERE seq=3")
    assert "event 3 is missing" in store.audit_log.verify_audit()[1]


def test_a_removed_last_audit_event_is_found(tmp_path):
    store = Store(tmp_path)
    for n in range(3):
        store.audit_log.audit(principal="a", source="cli", action="x", target=str(n), result="ok")
    store.db.connection().execute("DELETE FROM audit WHERE seq=3")
    checked, problem, _ = store.audit_log.verify_audit()
    assert checked == 2 and "removed from the end" in problem


def test_lease_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    store = Store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; sys.path.insert(0, '.');"
                               "from store import Store;"
                               f"Store({str(tmp_path)!r}).leases.acquire_lease('other', 'run-x', 60);"
                               "print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld) as info:
            store.leases.acquire_lease("me", None)
        assert "run-x" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    previous = store.leases.acquire_lease("me", None)  # the holder died: no need to wait for expiry
    assert previous.holder == "other"


def test_lease_expires(tmp_path):
    clock = FakeClock()
    store = Store(tmp_path, clock=clock)
    store.leases.acquire_lease("a", None, ttl=10)
    store.db.connection().execute("UPDATE leases SET host='elsewhere'")  # can't check its pid
    with pytest.raises(LeaseHeld):
        store.leases.acquire_lease("b", None)
    clock.advance(11)
    assert store.leases.acquire_lease("b", None).holder == "a"


def _writer(path, n, tag):
    store = Store(path)
    for i in range(n):
        store.events.add_event("test", f"{tag}-{i}")
        store.approvals.add_approval(checkpoint="c", plan_fingerprint=tag, decision="approved",
                           approver=tag, source="api")


def test_two_processes_write_at_once_without_losing_a_write(tmp_path):
    Store(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, 150, tag)) for tag in ("cli", "api")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(tmp_path)
    messages = [e.message for e in store.events.read(kind_prefix="test")]
    assert len(messages) == 300 and len(set(messages)) == 300
    assert len(store.approvals.decisions("c")) == 300

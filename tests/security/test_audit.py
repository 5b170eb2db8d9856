"""Everything audited, exportable, tamper-evident: every mutation from the API and the CLI
writes one audit event; the API and the CLI export them; a changed or missing event is found,
also by its keeper: the chain is keyed (a key outside the store), and its head leaves the
store with every export and notification, so a trail cut or rewritten behind it is found."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3

from store import Store
from store.db import SCHEMA_VERSION
from tests.conftest import clean_env, cli, os_user, write_config
from tests.security.conftest import APPROVER, OPERATOR, TOKENS, awaiting, bearer, make_app, shown


def test_every_mutation_is_one_audit_event_with_who_and_from_where(tmp_path):
    app = make_app(tmp_path, tokens=TOKENS)
    client, store = app.test_client(), app.extensions["raydeploy"].store
    awaiting(store, requester="olga")
    decided = shown(store)
    client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True, **decided},
                headers=APPROVER)
    client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True, **decided},
                headers=APPROVER)  # refused: already decided
    run_id = awaiting(store, checkpoint="serve_deploy", requester="olga")
    client.post(f"/api/v1/deployments/{run_id}/cancel", json={"reason": "not now"},
                headers=OPERATOR)
    client.post("/api/v1/resources/nodes/add", json={}, headers=OPERATOR)  # refused: no head
    events = list(store.audit_log.audit_events())
    assert [(e.action, e.principal, e.result) for e in events] == [
        ("approval.approve", "bob", "ok"), ("approval.approve", "bob", "refused"),
        ("run.cancel", "olga", "ok"), ("node.add", "olga", "refused")]
    assert all(e.source == "api" and e.client_address for e in events)
    assert events[0].plan_fingerprint == "fp1" and events[2].detail["reason"] == "not now"
    # exported as NDJSON, one event a line, filterable
    lines = client.get("/api/v1/audit?format=ndjson&action=approval",
                       headers=bearer("viewer-token-0123456789"))
    assert lines.mimetype == "application/x-ndjson"
    *exported, trailer = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
    assert [e["seq"] for e in exported] == [1, 2]
    head = {"seq": 4, "hash": events[3].hash}  # the trail's head, not the last one exported
    assert trailer == {"audit_head": head}
    verify = client.get("/api/v1/audit/verify", headers=bearer("viewer-token-0123456789"))
    assert verify.get_json() == {"intact": True, "checked": 4, "problem": None, "head": head}


def test_the_cli_writes_and_exports_audit_events_and_finds_tampering(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state")})
    awaiting(Store(tmp_path / "state"))
    assert cli("reject", "worker_launch", "--reason", "no", "--operator", "bob",
               config=config).returncode == 0
    exported = cli("audit", "--format", "jsonl", config=config)
    event, trailer = map(json.loads, exported.stdout.splitlines())
    assert trailer == {"audit_head": {"seq": 1, "hash": event["hash"]}}
    assert (event["action"], event["principal"], event["claimed_name"], event["source"]) == (
        "approval.reject", os_user(), "bob", "cli")
    assert "approval.reject" in cli("audit", "--since", "1h", config=config).stdout
    assert cli("audit", "verify", config=config).returncode == 0
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:  # somebody edits the trail
        db.execute("UPDATE audit SET principal='nobody' WHERE seq=1")
    broken = cli("audit", "verify", config=config)
    assert broken.returncode == 1 and "event 1 was altered" in broken.stderr


# -- the keeper of the store ---------------------------------------------------------------------
def trail(tmp_path, n=5):
    """A config and a store with ``n`` audit events."""
    tmp_path.mkdir(exist_ok=True)
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state")})
    store = Store(tmp_path / "state")
    for i in range(n):
        store.audit_log.audit(principal="alice", source="cli", action="run.start", target=f"run-{i}",
                    result="ok")
    return config, store


def plain_hash(row: dict) -> str:
    """How anyone can hash an event: what the chain was before it was keyed."""
    from store.events import AUDIT_FIELDS
    fields = {k: json.loads(row[k]) if k == "detail" else row[k] for k in AUDIT_FIELDS}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_an_event_edited_and_its_hash_recomputed_is_found(tmp_path):
    config, _ = trail(tmp_path)
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:  # rewrite from event 2 on
        db.row_factory = sqlite3.Row
        db.execute("UPDATE audit SET principal='nobody' WHERE seq=2")
        prev = db.execute("SELECT hash FROM audit WHERE seq=1").fetchone()[0]
        for row in db.execute("SELECT * FROM audit WHERE seq>=2 ORDER BY seq").fetchall():
            row = {**dict(row), "prev_hash": prev}
            prev = plain_hash(row)
            db.execute("UPDATE audit SET prev_hash=?, hash=? WHERE seq=?",
                       (row["prev_hash"], prev, row["seq"]))
    broken = cli("audit", "verify", config=config)
    assert broken.returncode == 1 and "event 2 was altered" in broken.stderr


def test_events_cut_from_the_end_with_the_sequence_lowered_are_found(tmp_path):
    config, _ = trail(tmp_path)
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        db.execute("DELETE FROM audit WHERE seq>3")
        db.execute("UPDATE sqlite_sequence SET seq=3 WHERE name='audit'")
    broken = cli("audit", "verify", config=config)
    assert broken.returncode == 1 and "events 4 to 5 are missing" in broken.stderr


def test_a_keeper_with_the_key_is_caught_by_a_head_kept_elsewhere(tmp_path):
    """Whoever holds the key can cut the trail and forge its head record; a head that left
    the store (an export, a notification) was not cut with it."""
    from store.events import _head_mac
    config, store = trail(tmp_path)
    exported = cli("audit", "--format", "jsonl", config=config)
    anchored = json.loads(exported.stdout.splitlines()[-1])["audit_head"]
    assert anchored == store.audit_log.audit_head() and anchored["seq"] == 5
    key = store.audit_log.audit_key()
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:  # the keeper cuts 4 and 5
        db.execute("DELETE FROM audit WHERE seq>3")
        db.execute("UPDATE sqlite_sequence SET seq=3 WHERE name='audit'")
        last = db.execute("SELECT hash FROM audit WHERE seq=3").fetchone()[0]
        db.execute("UPDATE meta SET value=? WHERE key='audit_head'",
                   (f"3:{last}:{_head_mac(key, 3, last)}",))
    assert cli("audit", "verify", config=config).returncode == 0  # the key vouches for it
    broken = cli("audit", "verify", "--expect-head", anchored["hash"], config=config)
    assert broken.returncode == 1 and "does not reach the head" in broken.stderr
    api = make_app(tmp_path).test_client()  # the API on the same store
    answer = api.get(f"/api/v1/audit/verify?expect_head={anchored['hash']}")
    assert answer.get_json()["intact"] is False and "does not reach" in answer.get_json()["problem"]
    # an intact trail that grew past the kept head still reaches it
    fresh_config, fresh = trail(tmp_path / "fresh", n=2)
    kept = fresh.audit_log.audit_head()["hash"]
    fresh.audit_log.audit(principal="bob", source="cli", action="run.start", target="later", result="ok")
    grown = cli("audit", "verify", "--expect-head", kept, config=fresh_config)
    assert grown.returncode == 0 and "continues past it" in grown.stdout
    assert cli("audit", "verify", "--expect-head", "nothex", config=fresh_config).returncode == 2


def test_the_trail_refuses_a_key_that_is_gone_or_another_one(tmp_path):
    config, store = trail(tmp_path, n=1)
    other = cli("reject", "worker_launch", "--reason", "x", config=config,
                env=clean_env(RAYDEPLOY_AUDIT_KEY="another-key-0123456789"))
    assert other.returncode == 2 and "another key" in other.stderr
    (tmp_path / "state" / "audit.key").unlink()
    gone = cli("audit", "verify", config=config)
    assert gone.returncode == 2 and "is gone" in gone.stderr and "Traceback" not in gone.stderr
    assert not (tmp_path / "state" / "audit.key").exists()  # never replaced by a new key


def test_notifications_carry_the_audit_head(tmp_path):
    from checkpoints import notifications
    from cluster.config import parse_config
    from tests.receiver import Receiver
    receiver = Receiver()
    try:
        config = parse_config({"state_dir": str(tmp_path / "state"), "notifications": {
            "targets": [{"name": "ops", "type": "slack", "url_env": "RD_TEST_HOOK"}]}},
            environ={})
        _, store = trail(tmp_path, n=2)
        os.environ["RD_TEST_HOOK"] = receiver.url
        try:
            notifier = notifications.Notifier(config, store)
            notifier.emit("test")
            notifier.flush(10)
        finally:
            del os.environ["RD_TEST_HOOK"]
        (delivery,) = store.deliveries.recent()
        assert delivery.payload["audit_head"] == store.audit_log.audit_head()
        assert delivery.payload["audit_head"]["seq"] == 2
    finally:
        receiver.stop()


def test_a_store_of_the_previous_version_is_chained_with_the_key_once(tmp_path):
    """An older store (schema 3: plainly hashed events, no key) is migrated on first use:
    the chain is keyed, what the plain chain said is kept in an audit.rekey event."""
    state = tmp_path / "state"
    Store(state).db.close()
    with sqlite3.connect(state / "state.db") as db:  # what a version-3 tool left
        db.row_factory = sqlite3.Row
        db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
        prev = "0" * 64
        for n in range(1, 4):
            row = {"seq": n, "created_at": 1.0 * n, "principal": "alice", "claimed_name": None,
                   "source": "cli", "client_address": None, "action": "run.start",
                   "target": f"run-{n}", "plan_fingerprint": None, "run_id": None,
                   "result": "ok", "detail": "{}", "prev_hash": prev}
            prev = row["hash"] = plain_hash(row)
            db.execute(f"INSERT INTO audit ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))
    plain_head = prev
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(state)})
    verified = cli("audit", "verify", config=config)
    assert verified.returncode == 0, verified.stderr
    assert "4 event(s)" in verified.stdout
    store = Store(state)
    assert store.db.schema_version() == SCHEMA_VERSION
    *events, rekey = store.audit_log.audit_events()
    assert [e.target for e in events] == ["run-1", "run-2", "run-3"]
    assert (rekey.action, rekey.result, rekey.detail["plain_head"]) == ("audit.rekey", "ok",
                                                                          plain_head)
    assert events[0].hash != plain_hash_of(events[0])  # keyed now
    assert cli("audit", "verify", config=config).stdout == verified.stdout  # only once


def plain_hash_of(event) -> str:
    from dataclasses import asdict
    row = asdict(event)
    row["detail"] = json.dumps(row["detail"])
    return plain_hash(row)


def test_approvals_refused_at_the_role_check_are_audited_without_the_token(tmp_path):
    """The README promises refused approve, reject and revoke attempts are audited; those a
    viewer or an operator made were stopped before anything recorded them."""
    app = make_app(tmp_path, tokens=TOKENS)
    client, store = app.test_client(), app.extensions["raydeploy"].store
    awaiting(store, requester="someone")
    viewer, operator = bearer("viewer-token-0123456789"), OPERATOR
    attempts = [
        client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True,
                                                             "plan_fingerprint": "fp1"},
                    headers=viewer),
        client.post("/api/v1/approvals", json={"checkpoint": "worker_launch",
                                               "decision": "reject", "approved_by": "boss"},
                    headers=operator),
        client.delete("/api/v1/approvals/apr-0123456789ab", headers=viewer),
        client.post("/api/v1/checkpoints/worker_launch", json={"approve": True}, headers=viewer),
        client.post("/api/v1/checkpoints/worker_launch",
                    json={"approve": True, "acknowledge_risks": True}, headers=operator),
    ]
    assert [r.status_code for r in attempts] == [403] * 5
    events = list(store.audit_log.audit_events())
    assert [(e.action, e.principal, e.target, e.result) for e in events] == [
        ("approval.approve", "vera", "worker_launch", "refused"),
        ("approval.reject", "olga", "worker_launch", "refused"),
        ("approval.revoke", "vera", "apr-0123456789ab", "refused"),
        ("approval.approve", "vera", "worker_launch", "refused"),
        ("approval.approve", "olga", "worker_launch", "refused")]
    assert events[0].plan_fingerprint == "fp1" and events[1].claimed_name == "boss"
    assert all("lacks the" in e.detail["reason"] and e.source == "api" and e.client_address
               for e in events)
    trail = json.dumps([e.__dict__ for e in events])
    assert "viewer-token" not in trail and "operator-token" not in trail
    assert store.approvals.decisions() == [] and store.runs.list_runs()[0].status == "awaiting_approval"
    # a refusal that is no decision (a viewer starting a run) is not an approval event
    assert client.post("/api/v1/deployments", json={}, headers=viewer).status_code == 403
    assert len(list(store.audit_log.audit_events())) == 5

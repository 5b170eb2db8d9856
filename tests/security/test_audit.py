"""Everything audited, exportable, tamper-evident: every mutation from the API and the CLI
writes one audit event; the API and the CLI export them; a changed or missing event is found."""
from __future__ import annotations

import json
import sqlite3

from store import Store
from tests.conftest import cli, os_user, write_config
from tests.security.conftest import APPROVER, OPERATOR, TOKENS, awaiting, bearer, make_app


def test_every_mutation_is_one_audit_event_with_who_and_from_where(tmp_path):
    app = make_app(tmp_path, tokens=TOKENS)
    client, store = app.test_client(), app.extensions["raydeploy"].store
    awaiting(store, requester="olga")
    client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True},
                headers=APPROVER)
    client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True},
                headers=APPROVER)  # refused: already decided
    run_id = awaiting(store, checkpoint="serve_deploy", requester="olga")
    client.post(f"/api/v1/deployments/{run_id}/cancel", json={"reason": "not now"},
                headers=OPERATOR)
    client.post("/api/v1/resources/nodes/add", json={}, headers=OPERATOR)  # refused: no head
    events = list(store.audit_events())
    assert [(e.action, e.principal, e.result) for e in events] == [
        ("approval.approve", "bob", "ok"), ("approval.approve", "bob", "refused"),
        ("run.cancel", "olga", "ok"), ("node.add", "olga", "refused")]
    assert all(e.source == "api" and e.client_address for e in events)
    assert events[0].plan_fingerprint == "fp1" and events[2].detail["reason"] == "not now"
    # exported as NDJSON, one event a line, filterable
    lines = client.get("/api/v1/audit?format=ndjson&action=approval",
                       headers=bearer("viewer-token-0123456789"))
    assert lines.mimetype == "application/x-ndjson"
    exported = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
    assert [e["seq"] for e in exported] == [1, 2]
    verify = client.get("/api/v1/audit/verify", headers=bearer("viewer-token-0123456789"))
    assert verify.get_json() == {"intact": True, "checked": 4, "problem": None}


def test_the_cli_writes_and_exports_audit_events_and_finds_tampering(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state")})
    awaiting(Store(tmp_path / "state"))
    assert cli("reject", "worker_launch", "--reason", "no", "--operator", "bob",
               config=config).returncode == 0
    exported = cli("audit", "--format", "jsonl", config=config)
    event = json.loads(exported.stdout.splitlines()[0])
    assert (event["action"], event["principal"], event["claimed_name"], event["source"]) == (
        "approval.reject", os_user(), "bob", "cli")
    assert "approval.reject" in cli("audit", "--since", "1h", config=config).stdout
    assert cli("audit", "verify", config=config).returncode == 0
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:  # somebody edits the trail
        db.execute("UPDATE audit SET principal='nobody' WHERE seq=1")
    broken = cli("audit", "verify", config=config)
    assert broken.returncode == 1 and "event 1 was altered" in broken.stderr


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
    events = list(store.audit_events())
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
    assert store.approvals() == [] and store.list_runs()[0].status == "awaiting_approval"
    # a refusal that is no decision (a viewer starting a run) is not an approval event
    assert client.post("/api/v1/deployments", json={}, headers=viewer).status_code == 403
    assert len(list(store.audit_events())) == 5

"""Side doors 4, 6 and 7: approving needs the approver role on every path (the CLI is the OS
user), a rejection is final for its run, and Idempotency-Key is scoped to caller, path and
body."""
from __future__ import annotations

import threading

from tests.conftest import cli, os_user, write_config
from tests.security.conftest import APPROVER, OPERATOR, TOKENS, awaiting, bearer, make_app, shown


def test_an_operator_cannot_approve_by_running_a_checkpoint(secured):
    _, client, store = secured
    response = client.post("/api/v1/checkpoints/worker_launch",
                           json={"approve": True, "acknowledge_risks": True}, headers=OPERATOR)
    assert response.status_code == 403 and "approver" in response.get_json()["message"]
    assert store.runs.list_runs() == []  # nothing started
    assert store.approvals.decisions() == []


def cli_config(tmp_path, roles: str | None, **extra):
    """A config whose tokens file gives the OS user ``roles`` (None: no principals at all)."""
    doc = {"state_dir": str(tmp_path / "state"), "cluster_name": "rules", **extra}
    if roles is not None:
        tokens = tmp_path / "tokens.yaml"
        tokens.write_text(f"tokens:\n  - {{principal: {os_user()}, roles: [{roles}], "
                          f"token: {'t' * 32}}}\n")
        tokens.chmod(0o600)
        doc["api"] = {"tokens_file": str(tokens)}
    return write_config(tmp_path / "c.yaml", doc)


def store_of(tmp_path):
    from store import Store
    return Store(tmp_path / "state")


def test_approving_on_the_cli_needs_the_approver_role(tmp_path):
    config = cli_config(tmp_path, "operator")
    awaiting(store_of(tmp_path), requester="someone-else")
    result = cli("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert result.returncode == 2 and "lacks the approver role" in result.stderr
    assert store_of(tmp_path).approvals.decisions() == []
    assert store_of(tmp_path).audit_log.audit_events().__next__().result == "refused"


def test_the_cli_may_not_approve_its_own_run_when_self_approval_is_forbidden(tmp_path):
    config = cli_config(tmp_path, "admin", approvals={"forbid_self_approval": True})
    awaiting(store_of(tmp_path), requester=os_user())  # the run this OS user started
    result = cli("approve", "worker_launch", "--acknowledge-risks", "--operator", "somebody",
                 config=config)
    assert result.returncode == 2 and "may not approve" in result.stderr
    assert store_of(tmp_path).approvals.decisions() == []


def test_the_cli_operator_flag_is_a_claimed_name_beside_the_os_user(tmp_path):
    config = cli_config(tmp_path, None)  # single-user: the OS user may do everything
    awaiting(store_of(tmp_path))
    result = cli("approve", "worker_launch", "--acknowledge-risks", "--operator", "mallory",
                 config=config)
    assert result.returncode == 0, result.stderr
    record = store_of(tmp_path).approvals.decisions()[0]
    assert (record.approver, record.claimed_by) == (os_user(), "mallory")


def test_a_rejection_ends_its_run_at_once_and_cannot_be_undone(secured):
    _, client, store = secured
    run_id = awaiting(store, requester="olga")
    decided = shown(store)
    rejected = client.post("/api/v1/approvals/worker_launch",
                           json={"decision": "reject", "reason": "no", **decided},
                           headers=APPROVER)
    assert rejected.status_code == 201
    assert store.runs.get_run(run_id).status == "rejected"  # nobody needs to be waiting
    revoke = client.delete(f"/api/v1/approvals/{rejected.get_json()['id']}",
                           headers=bearer("alice-token-0123456789"))
    assert revoke.status_code == 409 and "final" in revoke.get_json()["message"]
    approve = client.post("/api/v1/approvals/worker_launch",
                          json={"acknowledge_risks": True, **decided},
                          headers=bearer("alice-token-0123456789"))
    assert approve.status_code == 404  # nothing awaits approval any more
    assert store.runs.get_run(run_id).status == "rejected"
    resume = client.post("/api/v1/deployments", json={"resume": True, "run_id": run_id},
                         headers=bearer("admin-token-0123456789"))
    assert resume.status_code == 409 and "rejected" in resume.get_json()["message"]  # final: a Conflict


def test_concurrent_revocations_make_exactly_one_record(tmp_path):
    app = make_app(tmp_path, tokens=TOKENS)
    store = app.extensions["raydeploy"].store
    awaiting(store, requester="olga")
    approved = app.test_client().post("/api/v1/approvals/worker_launch",
                                      json={"acknowledge_risks": True, **shown(store)},
                                      headers=APPROVER)
    approval_id = approved.get_json()["id"]
    barrier, codes = threading.Barrier(8), []

    def revoke():
        client = app.test_client()
        barrier.wait()
        codes.append(client.delete(f"/api/v1/approvals/{approval_id}",
                                   headers=APPROVER).status_code)
    threads = [threading.Thread(target=revoke) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 7
    assert [a.revokes for a in store.approvals.decisions() if a.revokes] == [approval_id]


def test_an_idempotency_key_is_scoped_to_caller_route_and_body(secured):
    _, client, store = secured
    awaiting(store, requester="olga", destructive=False)
    key, decided = {"Idempotency-Key": "same-key"}, shown(store)
    first = client.post("/api/v1/approvals/worker_launch", json={"decision": "approve", **decided},
                        headers={**APPROVER, **key})
    assert first.status_code == 201
    # the same key for another request (a reject) does not return the approval
    other = client.post("/api/v1/approvals/worker_launch", json={"decision": "reject", **decided},
                        headers={**APPROVER, **key})
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]["json"]
    # the same key from another caller is another request (here: already decided)
    alice = client.post("/api/v1/approvals/worker_launch", json={"decision": "approve", **decided},
                        headers={**bearer("alice-token-0123456789"), **key})
    assert alice.status_code == 409
    replay = client.post("/api/v1/approvals/worker_launch", json={"decision": "approve", **decided},
                         headers={**APPROVER, **key})
    assert replay.status_code == 200 and replay.get_json()["id"] == first.get_json()["id"]
    assert len(store.approvals.decisions()) == 1


def test_an_idempotency_key_is_scoped_to_the_concrete_path_not_the_route_template(secured):
    """A key reused to reject teardown must not replay the rejection of worker_launch."""
    _, client, store = secured
    awaiting(store, checkpoint="worker_launch", requester="olga")
    teardown_run = awaiting(store, checkpoint="teardown", requester="olga")
    key, body = {"Idempotency-Key": "reused-key"}, {"decision": "reject", "reason": "no"}
    first = client.post("/api/v1/approvals/worker_launch", headers={**APPROVER, **key},
                        json={**body, **shown(store, "worker_launch")})
    assert first.status_code == 201 and first.get_json()["checkpoint"] == "worker_launch"
    second = client.post("/api/v1/approvals/teardown", headers={**APPROVER, **key},
                         json={**body, **shown(store, "teardown")})
    assert second.status_code == 201, second.get_json()
    assert second.headers.get("Idempotent-Replayed") is None
    assert second.get_json()["checkpoint"] == "teardown"
    assert store.runs.get_run(teardown_run).status == "rejected"
    assert sorted(a.checkpoint for a in store.approvals.decisions()) == ["teardown", "worker_launch"]


def test_the_decider_is_the_token_principal_never_a_body_field(secured):
    _, client, store = secured
    awaiting(store, requester="olga")
    record = client.post("/api/v1/approvals/worker_launch",
                         json={"acknowledge_risks": True, "approved_by": "mallory",
                               **shown(store)},
                         headers=APPROVER).get_json()
    assert (record["approver"], record["claimed_by"]) == ("bob", "mallory")

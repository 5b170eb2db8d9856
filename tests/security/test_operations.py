"""Side door 5: node and Serve app mutations through the API are one-step runs with a plan,
a fingerprint, a gate (approvals.operations) and an audit event; additions need no approval
and answer as before."""
from __future__ import annotations

import time

import pytest
import requests

from tests.security.conftest import APPROVER, OPERATOR, TOKENS, make_app


@pytest.fixture
def with_worker(tmp_path):
    """An API over a local platform with one running "worker" app (a plain process: removing
    a node needs no Ray when the cluster has no head to drain it through)."""
    from cluster.platforms.base import AppSpec
    app = make_app(tmp_path, tokens=TOKENS)
    svc = app.extensions["raydeploy"]
    project = svc.config.project_dir
    (project / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    platform = svc.ctx.platform
    worker = platform.create_app(AppSpec(name="apitest-worker-1", script="sleeper.py", cpu=1,
                                         memory=1))
    yield app.test_client(), svc, worker
    for leftover in platform.list_apps():
        platform.delete_app(leftover.id)


def test_removing_a_node_waits_for_an_approval_bound_to_its_plan(with_worker):
    client, svc, worker = with_worker
    response = client.delete(f"/api/v1/resources/nodes/{worker.id}", headers=OPERATOR)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    pending = body["pending"]
    assert body["status"] == "awaiting_approval" and pending["checkpoint"] == "node_remove"
    assert pending["gate"]["destructive"]
    assert pending["plan"]["actions"][0]["name"] == "apitest-worker-1"
    assert svc.ctx.platform.get_app(worker.id).status == "running"  # nothing removed yet
    assert svc.store.get_run(body["run_id"]).status == "awaiting_approval"
    # the operator cannot approve it; an approver can, for this plan only
    assert client.post("/api/v1/approvals/node_remove", json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]}, headers=OPERATOR).status_code == 403
    approved = client.post("/api/v1/approvals/node_remove", headers=APPROVER, json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]})
    assert approved.status_code == 201
    deadline = time.monotonic() + 30
    while svc.store.get_run(body["run_id"]).status != "succeeded":
        assert time.monotonic() < deadline, svc.store.get_run(body["run_id"])
        time.sleep(0.1)
    assert [a.id for a in svc.ctx.platform.list_apps()] == []
    actions = [(e.action, e.principal, e.result) for e in svc.store.audit_events()]
    assert ("node.remove", "olga", "pending") in actions
    assert ("approval.approve", "bob", "ok") in actions


def test_the_operations_policy_can_lift_the_gate(tmp_path):
    from cluster.platforms.base import AppSpec
    app = make_app(tmp_path, tokens=TOKENS, approvals={"operations": {"node_remove": "none"}})
    svc = app.extensions["raydeploy"]
    (svc.config.project_dir / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    worker = svc.ctx.platform.create_app(AppSpec(name="apitest-worker-1", script="sleeper.py",
                                                 cpu=1, memory=1))
    try:
        response = app.test_client().delete(f"/api/v1/resources/nodes/{worker.id}",
                                            headers=OPERATOR)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["app_name"] == "apitest-worker-1"
        assert svc.store.get_run(response.get_json()["run_id"]).mode == "operation"
    finally:
        for leftover in svc.ctx.platform.list_apps():
            svc.ctx.platform.delete_app(leftover.id)


@pytest.mark.integration
def test_redeploying_a_running_app_waits_for_an_approval(cluster, tmp_path):
    from tests.conftest import ApiServer
    server = ApiServer(cluster.config_path)
    try:
        body = {"name": "hello", "import_path": "examples.apps.hello:build",
                "route_prefix": "/hello", "args": {"greeting": "hijacked"}}
        response = requests.post(f"{server.url}/api/v1/applications", json=body, timeout=60)
        assert response.status_code == 202 and response.json()["status"] == "awaiting_approval"
        assert response.json()["pending"]["gate"]["destructive"]
        proxy = cluster.manager().serve.proxy_url
        assert requests.get(f"{proxy}/hello", timeout=10).json()["message"] == "hello, world"
        run_id, pending = response.json()["run_id"], response.json()["pending"]
        rejected = requests.post(f"{server.url}/api/v1/approvals/app_deploy", json={
            "decision": "reject", "reason": "keep it", "run_id": pending["run_id"],
            "plan_fingerprint": pending["plan_fingerprint"]}, timeout=10)
        assert rejected.status_code == 201, rejected.text
        assert requests.get(f"{server.url}/api/v1/deployments/{run_id}",
                            timeout=10).json()["status"] == "rejected"
    finally:
        server.stop()

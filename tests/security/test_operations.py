"""Side door 5: node and Serve app mutations through the API are one-step runs with a plan,
a fingerprint, a gate (approvals.operations) and an audit event; additions need no approval
and answer as before."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.security.conftest import APPROVER, OPERATOR, TOKENS, make_app


@pytest.fixture
def with_worker(tmp_path):
    """An API over a local platform with one running "worker" app (a plain process: removing
    a node needs no Ray when the cluster has no head to drain it through)."""
    from cluster.platforms.records import AppSpec, node_tags
    app = make_app(tmp_path, tokens=TOKENS)
    svc = app.extensions["raydeploy"]
    project = svc.config.project_dir
    (project / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    platform = svc.ctx.platform
    worker = platform.create_app(AppSpec(name="apitest-worker-1", script="sleeper.py", cpu=1,
                                         memory=1, tags=node_tags("apitest", "worker", 1)))
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
    # the same command the gate and the notifications print: with the config (an operator
    # sees its path) and the acknowledgement the gate needs
    config = Path(str(svc.config.source))
    assert pending["approve_with"]["cli"] == (f"python deploy_master.py --config {config} "
                                              f"approve node_remove --acknowledge-risks")
    assert svc.ctx.platform.get_app(worker.id).status == "running"  # nothing removed yet
    assert svc.store.runs.get_run(body["run_id"]).status == "awaiting_approval"
    # the operator cannot approve it; an approver can, for this plan only
    assert client.post("/api/v1/approvals/node_remove", json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]}, headers=OPERATOR).status_code == 403
    approved = client.post("/api/v1/approvals/node_remove", headers=APPROVER, json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]})
    assert approved.status_code == 201
    deadline = time.monotonic() + 30
    while svc.store.runs.get_run(body["run_id"]).status != "succeeded":
        assert time.monotonic() < deadline, svc.store.runs.get_run(body["run_id"])
        time.sleep(0.1)
    assert [a.id for a in svc.ctx.platform.list_apps()] == []
    actions = [(e.action, e.principal, e.result) for e in svc.store.audit_log.audit_events()]
    assert ("node.remove", "olga", "pending") in actions
    assert ("approval.approve", "bob", "ok") in actions


def test_the_operations_policy_can_lift_the_gate(tmp_path):
    from cluster.platforms.records import AppSpec, node_tags
    app = make_app(tmp_path, tokens=TOKENS, approvals={"operations": {"node_remove": "none"}})
    svc = app.extensions["raydeploy"]
    (svc.config.project_dir / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    worker = svc.ctx.platform.create_app(AppSpec(name="apitest-worker-1", script="sleeper.py",
                                                 cpu=1, memory=1,
                                                 tags=node_tags("apitest", "worker", 1)))
    try:
        response = app.test_client().delete(f"/api/v1/resources/nodes/{worker.id}",
                                            headers=OPERATOR)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["app_name"] == "apitest-worker-1"
        assert svc.store.runs.get_run(response.get_json()["run_id"]).mode == "operation"
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


# -- route prefixes: no app may take the management API's requests, or another app's ---------
@pytest.mark.parametrize("prefix", ["/api/v1/approvals", "/api", "/api/v1", "/health", "/ui",
                                    "/api/v1/approvals/teardown", "/docs-assets/x/y", "/metrics/",
                                    "/"])
def test_an_app_inside_the_management_apis_routes_is_refused(tmp_path, prefix):
    """Serve routes by the longest prefix: an app at /api/v1/approvals received approvers'
    requests, bearer tokens included. Refused before any run, whatever the gate."""
    app = make_app(tmp_path, tokens=TOKENS, serve={"allowed_import_prefixes": ["examples"]})
    response = app.test_client().post("/api/v1/applications", headers=OPERATOR, json={
        "name": "shadow", "import_path": "examples.apps.hello:build", "route_prefix": prefix})
    assert response.status_code == 422, response.get_json()
    assert "management API" in response.get_json()["errors"]["json"]["route_prefix"][0]
    store = app.extensions["raydeploy"].store
    assert store.runs.list_runs() == []
    assert [(e.action, e.result) for e in store.audit_log.audit_events()] == [("app.deploy", "refused")]


@pytest.mark.parametrize("mgmt,prefix,code", [
    ({}, "/api/v2", 409), ({}, "/apis", 409), ({}, "/hello", 409),  # allowed: 409 = no head
    ({"route_prefix": "/mgmt"}, "/api/v1/approvals", 409),
    ({"route_prefix": "/mgmt"}, "/mgmt/api/v1", 422), ({"route_prefix": "/mgmt"}, "/mgmt", 422),
    ({"enabled": False}, "/api/v1/approvals", 409),
])
def test_only_prefixes_inside_the_management_apis_routes_are_refused(tmp_path, mgmt, prefix, code):
    app = make_app(tmp_path, serve={"allowed_import_prefixes": ["examples"],
                                    "management_api": mgmt})
    response = app.test_client().post("/api/v1/applications", json={
        "name": "x", "import_path": "examples.apps.hello:build", "route_prefix": prefix})
    assert response.status_code == code, response.get_json()


def test_a_configured_app_inside_the_management_apis_routes_is_a_config_error():
    from cluster.config import ConfigError, parse_config
    app = {"name": "shadow", "import_path": "m:app", "route_prefix": "/api/v1/approvals"}
    with pytest.raises(ConfigError) as info:
        parse_config({"serve": {"applications": [app]}}, environ={})
    assert list(info.value.errors) == ["serve.applications.0.route_prefix"]
    assert "management API" in info.value.errors["serve.applications.0.route_prefix"][0]
    moved = parse_config({"serve": {"applications": [app], "management_api": {
        "route_prefix": "/mgmt"}}}, environ={})
    assert moved.serve.applications[0].route_prefix == "/api/v1/approvals"


def test_an_app_under_another_apps_prefix_is_gated_as_a_replacement(tmp_path):
    """/hello/admin takes the requests under it from the app at /hello: a replacement."""
    from checkpoints.operations import AppDeploy
    from tests.fakes import world
    w = world(tmp_path)  # hello is configured: examples.* may be deployed
    w.ray.app("hello", "/hello")
    w.ray.app("management-api", "/", import_path="api_server.serve_app:build")
    entry = {"name": "admin", "import_path": "examples.apps.hello:build",
             "route_prefix": "/hello/admin"}
    op = AppDeploy(entry=entry)
    op.precheck(w.ctx)
    plan = op.plan(w.ctx)
    assert [(str(a.kind), a.resource, a.name) for a in plan.actions] == [
        ("create", "app", "admin"), ("replace", "traffic", "hello")]
    gate = op.gate(plan, w.ctx.config)
    assert gate.required and gate.destructive
    assert "approvals.operations.app_replace is 'approval'" in gate.reasons
    # beside it, not under it: a plain new app, no gate
    beside = AppDeploy(entry={**entry, "route_prefix": "/hello-admin"})
    assert not beside.gate(beside.plan(w.ctx), w.ctx.config).required


def test_the_running_management_api_is_guarded_even_when_the_config_has_it_off(tmp_path):
    from checkpoints.operations import AppDeploy
    from core.errors import Invalid
    from tests.fakes import world
    w = world(tmp_path, mgmt=False)
    w.ray.app("management-api", "/", import_path="api_server.serve_app:build")
    op = AppDeploy(entry={"name": "shadow", "import_path": "examples.apps.hello:build",
                          "route_prefix": "/api/v1/approvals"})
    with pytest.raises(Invalid) as info:
        op.precheck(w.ctx)
    assert info.value.field == "route_prefix"

"""The API's contract without a cluster: shapes, errors, approvals, auth, CORS, docs, spec."""
import logging
from dataclasses import replace

import pytest

from api_server import ApiSetupError, check_listener
from api_server.spec import SPEC, render
from cluster.config import ConfigError, parse_config
from tests.api_server.conftest import awaiting, make_app, shown


def error_shape(response, code):
    body = response.get_json()
    assert response.status_code == code, body
    assert set(body) >= {"code", "status", "message"} and body["code"] == code
    return body


def test_health_without_a_cluster(client):
    body = client.get("/health").get_json()
    assert body == {"status": "healthy", "ray_connected": False, "platform_available": True,
                    "cai_available": True, "cluster_name": body["cluster_name"],
                    "platform": "local", "control_plane": False}
    assert body["cluster_name"]


def test_checkpoints_are_listed_in_order(client):
    listed = client.get("/api/v1/checkpoints").get_json()["checkpoints"]
    names = [c["name"] for c in listed]
    assert names == ["prerequisites", "project_setup", "job_creation", "head_launch",
                     "worker_launch", "serve_deploy", "monitoring", "validation"]
    # the checkpoints that can remove or replace something running (their gate can be)
    assert [c["name"] for c in listed if c["destructive"]] == [
        "head_launch", "worker_launch", "serve_deploy", "monitoring"]
    detail = client.get("/api/v1/checkpoints/prerequisites").get_json()
    assert detail["status"] == "never_run" and "0.0.0" in detail["plan_error"]
    error_shape(client.get("/api/v1/checkpoints/nope"), 404)


@pytest.mark.parametrize("path,body,field", [
    ("/api/v1/approvals", {"decision": "approve"}, "checkpoint"),
    ("/api/v1/approvals/worker_launch", {"decision": "maybe"}, "decision"),
    ("/api/v1/resources/nodes/add", {"cpu": -1}, "cpu"),
    ("/api/v1/resources/nodes/add", {"node_type": "head"}, "node_type"),
    ("/api/v1/applications", {"name": "a", "import_path": "nocolon", "route_prefix": "/a"}, "import_path"),
    ("/api/v1/applications", {"name": "a", "import_path": "m:app", "route_prefix": "a"}, "route_prefix"),
    ("/api/v1/deployments", {"start_from": "nowhere"}, "start_from"),
    ("/api/v1/deployments", {"bogus": 1}, "bogus"),
])
def test_bad_bodies_get_422_with_field_errors(client, path, body, field):
    response = client.post(path, json=body)
    assert field in error_shape(response, 422)["errors"]["json"]


def test_not_found_and_conflicts_never_500(client):
    error_shape(client.get("/api/v1/deployments/run-nope"), 404)
    error_shape(client.get("/api/v1/deployments/run-nope/events"), 404)
    error_shape(client.post("/api/v1/deployments/run-nope/cancel", json={}), 404)
    error_shape(client.delete("/api/v1/approvals/apr-nope"), 404)
    error_shape(client.post("/api/v1/approvals/worker_launch",  # nothing awaits
                            json={"run_id": "run-nope", "plan_fingerprint": "fp1"}), 404)
    # no head: adding a node conflicts with the cluster's state; an unknown node is not found
    error_shape(client.post("/api/v1/resources/nodes/add", json={"wait": False}), 409)
    error_shape(client.delete("/api/v1/resources/nodes/app-nope"), 404)


def test_approval_flow_through_the_api(client, store):
    run_id = awaiting(store)
    pending = client.get("/api/v1/approvals?state=pending").get_json()["approvals"]
    assert [(a["checkpoint"], a["state"], a["run_id"]) for a in pending] == [
        ("worker_launch", "pending", run_id)]
    gate = client.get("/api/v1/approvals/worker_launch").get_json()
    assert gate["awaiting"] and gate["plan_fingerprint"] == "fp1" and not gate["approved"]
    assert any("acknowledge_risks" in r for r in gate["required"])
    # no run or plan named: 422; wrong plan: 409; destructive without acknowledgement: 422
    body = error_shape(client.post("/api/v1/approvals/worker_launch",
                                   json={"acknowledge_risks": True}), 422)
    assert set(body["errors"]["json"]) == {"run_id", "plan_fingerprint"}
    error_shape(client.post("/api/v1/approvals/worker_launch", json={
        "run_id": run_id, "plan_fingerprint": "other", "acknowledge_risks": True}), 409)
    body = error_shape(client.post("/api/v1/approvals", json={
        "checkpoint": "worker_launch", **shown(store)}), 422)
    assert "acknowledge_risks" in body["errors"]["json"]
    body = {"approved_by": "bob", "reason": "ok", "acknowledge_risks": True, **shown(store)}
    created = client.post("/api/v1/approvals/worker_launch", json=body,
                          headers={"Idempotency-Key": "k-1"})
    assert created.status_code == 201
    record = created.get_json()
    # without tokens nobody is known: the claimed name is kept beside, never instead
    assert (record["approver"], record["claimed_by"]) == ("anonymous", "bob")
    assert (record["state"], record["source"]) == ("approved", "api")
    repeat = client.post("/api/v1/approvals/worker_launch", json=body,
                         headers={"Idempotency-Key": "k-1"})
    assert repeat.status_code == 200 and repeat.get_json()["id"] == record["id"]
    assert repeat.headers["Idempotent-Replayed"] == "true"
    error_shape(client.post("/api/v1/approvals/worker_launch",
                            json={"acknowledge_risks": True, **shown(store)}), 409)
    assert client.get("/api/v1/approvals/worker_launch").get_json()["approved"]
    revoked = client.delete(f"/api/v1/approvals/{record['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["revokes"] == record["id"]
    error_shape(client.delete(f"/api/v1/approvals/{record['id']}"), 409)
    states = {a["id"]: a["state"] for a in client.get("/api/v1/approvals").get_json()["approvals"]}
    assert states[record["id"]] == "revoked"
    assert len(store.approvals.decisions("worker_launch")) == 2  # nothing lost: append-only


def test_rejection_through_the_api(client, store):
    awaiting(store)
    response = client.post("/api/v1/approvals", json={"checkpoint": "worker_launch",
                                                      "decision": "reject", "reason": "no",
                                                      **shown(store)})
    assert response.status_code == 201 and response.get_json()["state"] == "rejected"


TOKENS = ("root:admin:admin-token-0123456789,"
          "vera:viewer:viewer-token-0123456789,"
          "olga:operator:operator-token-01234567,"
          "alice:approver:alice-token-0123456789,"
          "bob:approver:bob-token-012345678901")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_auth_roles_and_principal(tmp_path, caplog):
    app = make_app(tmp_path, tokens=TOKENS, approvals={"forbid_self_approval": True},
                   api={"cors_origins": ["https://ui.example.com"]})
    client, store = app.test_client(), app.extensions["raydeploy"].store
    caplog.set_level(logging.DEBUG)
    assert client.get("/health").status_code == 200  # open
    assert client.get("/docs").status_code == 200  # documentation holds no cluster data
    error_shape(client.get("/api/v1/checkpoints"), 401)
    error_shape(client.get("/api/v1/checkpoints", headers=bearer("wrong-token-0123456789")), 401)
    assert client.get("/api/v1/checkpoints", headers=bearer("viewer-token-0123456789")).status_code == 200
    awaiting(store, requester="alice")
    decision = {"acknowledge_risks": True, **shown(store)}
    error_shape(client.post("/api/v1/approvals/worker_launch", json=decision,
                            headers=bearer("viewer-token-0123456789")), 403)
    error_shape(client.post("/api/v1/approvals/worker_launch", json=decision,
                            headers=bearer("operator-token-01234567")), 403)
    # the requester may not approve its own destructive gate
    error_shape(client.post("/api/v1/approvals/worker_launch", json=decision,
                            headers=bearer("alice-token-0123456789")), 403)
    ok = client.post("/api/v1/approvals/worker_launch",
                     json={"acknowledge_risks": True, "approved_by": "mallory", **shown(store)},
                     headers=bearer("bob-token-012345678901"))
    assert ok.status_code == 201 and ok.get_json()["approver"] == "bob"  # body ignored
    # CORS for the configured origin only
    preflight = client.options("/api/v1/checkpoints", headers={
        "Origin": "https://ui.example.com", "Access-Control-Request-Method": "GET"})
    assert preflight.headers.get("Access-Control-Allow-Origin") == "https://ui.example.com"
    other = client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "token-0123456789" not in caplog.text and "bob-token" not in caplog.text


def test_wildcard_cors_is_refused():
    with pytest.raises(ConfigError) as info:
        parse_config({"api": {"cors_origins": ["*"]}}, environ={})
    assert "api.cors_origins.0" in info.value.errors


def test_without_auth_only_loopback_listens():
    check_listener("127.0.0.1", auth_enabled=False)
    check_listener("0.0.0.0", auth_enabled=True)
    with pytest.raises(ApiSetupError):
        check_listener("0.0.0.0", auth_enabled=False)


def test_docs_work_offline(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).get_data(as_text=True)
        assert "cdn" not in html.lower() and "https://" not in html
    for asset in ("swagger/swagger-ui.css", "swagger/swagger-ui-bundle.js",
                  "swagger/swagger-ui-standalone-preset.js", "redoc/redoc.standalone.js"):
        response = client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200 and len(response.data) > 1000
        response.close()
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.")


def test_checked_in_spec_is_current():
    assert SPEC.read_text() == render(), "openapi/openapi.yaml is stale: python -m api_server.spec"


def test_cancel_a_run_awaiting_approval(client, store):
    run_id = awaiting(store)
    body = client.post(f"/api/v1/deployments/{run_id}/cancel", json={}).get_json()
    assert body["status"] == "cancelled"
    assert not client.get("/api/v1/approvals?state=pending").get_json()["approvals"]
    error_shape(client.post(f"/api/v1/deployments/{run_id}/cancel", json={}), 409)
    events = client.get(f"/api/v1/deployments/{run_id}/events?follow=false").get_data(as_text=True)
    assert "event: run.cancelled" in events and "event: end" in events


def test_an_operation_gate_with_nothing_waiting_has_no_plan_and_says_why(client):
    answer = client.get("/api/v1/approvals/node_remove")
    assert answer.status_code == 200  # was a 500: an operation's plan needs its parameters
    body = answer.get_json()
    assert not body["awaiting"] and body["plan"] is None and "operation" in body["plan_error"]


def test_config_warnings_are_logged_when_the_app_starts(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="api_server")
    make_app(tmp_path, cai={"host": "http://127.0.0.1:9", "api_key": "k" * 20,
                            "resources": {"cpu": 2, "memory": 8}})
    assert ("cai: head_resources absent: the head uses the worker resources (2 CPU, 8 GiB)"
            in caplog.text)
    assert "k" * 20 not in caplog.text


def test_nodes_and_apps_carry_the_seed_tools_fields(app, client):
    """cml_app_id / cml_app_name beside platform_app_*, and each last_deployed_time again as
    ISO 8601 UTC in last_deployed_at (the cluster: the real inventory over a fake world)."""
    from checkpoints.factory import make_context
    from cluster.layout import LAYOUT_KEY
    from tests.fakes import FakePlatform, FakeRay
    svc = app.extensions["raydeploy"]
    platform, ray = FakePlatform(svc.config), FakeRay()
    svc.cluster = make_context(svc.config, store=svc.store, platform=platform,
                               dashboard_factory=ray.client).cluster
    svc.store.kv.set(LAYOUT_KEY, {"port": 6379, "dashboard_port": 8265, "serve_port": 8000,
                                  "client_port": 10001, "agent_port": 52365,
                                  "worker_ports": [26000, 26099]})
    head = platform.add_app("apitest-head")
    platform.apps[head.id] = head = replace(head, created_at=1767323045.25)
    ray.node(head, head=True)
    ray.nodes.append({"node_id": "stray", "node_ip": "127.0.0.99", "is_head_node": False,
                      "state": "ALIVE", "resources_total": {"CPU": 1.0}})
    ray.app("hello", "/hello")
    ray.serve["hello"]["last_deployed_time_s"] = 1767323045.0

    nodes = {n["node_type"]: n for n in client.get("/api/v1/resources/nodes").get_json()["nodes"]}
    head_row, stray = nodes["head"], nodes["worker"]
    assert (head_row["cml_app_id"], head_row["cml_app_name"]) == (
        head_row["platform_app_id"], head_row["platform_app_name"]) == (head.id, "apitest-head")
    assert head_row["last_deployed_time"] == 1767323045.25
    assert head_row["last_deployed_at"] == "2026-01-02T03:04:05.250Z"
    assert (stray["cml_app_id"], stray["last_deployed_at"], stray["last_deployed_time"]) == (
        None, None, None)  # a Ray node no app of this cluster runs

    [hello] = client.get("/api/v1/applications").get_json()["applications"]
    assert (hello["last_deployed_time"], hello["last_deployed_at"]) == (
        1767323045.0, "2026-01-02T03:04:05.000Z")
    assert client.get("/api/v1/applications/hello").get_json()["last_deployed_at"] == \
        "2026-01-02T03:04:05.000Z"


def test_ray_address_is_read_once_from_the_environment_and_checked_at_start(tmp_path):
    from api_server import create_app
    from api_server.settings import Settings
    settings = Settings.from_env({"RAY_ADDRESS": "127.0.0.1:6379", "RAY_AUTH_TOKEN": "tok-123"})
    assert (settings.ray_address, settings.ray_auth_token) == ("127.0.0.1:6379", "tok-123")
    assert "tok-123" not in repr(settings)
    config = parse_config({"state_dir": str(tmp_path / "s")}, environ={})
    from core.errors import Invalid
    with pytest.raises(Invalid) as info:  # the dev server says it in one line, exit 2
        create_app(Settings(ray_address="auto"), config)
    assert "RAY_ADDRESS=auto" in str(info.value)
    app = create_app(Settings(ray_address="http://127.0.0.1:9", status_cache_seconds=0), config)
    assert app.extensions["raydeploy"].cluster.inventory.address.kind == "dashboard"
    assert app.test_client().get("/health").get_json()["ray_connected"] is False


def test_the_management_routes_the_domain_guards_are_exactly_the_apps_routes(app):
    """cluster/serve_routes.MANAGEMENT_ROUTES keeps user apps off the API's paths: a route
    added here must be added there."""
    from cluster.serve_routes import MANAGEMENT_ROUTES
    assert sorted(MANAGEMENT_ROUTES) == sorted({r.rule for r in app.url_map.iter_rules()})


def test_the_served_spec_says_whether_this_server_asks_for_a_token(tmp_path):
    """Authentication is the security scheme, never a required `Authorization` parameter:
    a server without tokens serves `security: []` and says so (schemathesis took the
    required header at its word and flagged every answer given without it)."""
    import yaml
    off = make_app(tmp_path).test_client().get("/openapi.json").get_json()
    (tmp_path / "on").mkdir()
    on = make_app(tmp_path / "on", tokens="vera:viewer:viewer-token-0123456789").test_client(
        ).get("/openapi.json").get_json()
    assert off["security"] == [] and "Authentication is off" in off["info"]["description"]
    assert on["security"] == [{"bearerAuth": []}] and "bearer token" in on["info"]["description"]
    checked_in = yaml.safe_load(SPEC.read_text())
    assert checked_in["security"] == [{"bearerAuth": []}]  # what a deployment with tokens serves
    for spec in (off, on, checked_in):
        parameters = [p for ops in spec["paths"].values() for op in ops.values()
                      if isinstance(op, dict) for p in op.get("parameters", [])]
        assert not any(p.get("name", "").lower() == "authorization" for p in parameters)

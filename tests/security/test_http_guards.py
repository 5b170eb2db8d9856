"""Side doors 8 and 9: no cross-site form posts, no DNS rebinding, no wildcard CORS; bounded
bodies, shallow JSON, bounded event streams."""
from __future__ import annotations

import io
import threading

import pytest
import requests

from cluster.config import ConfigError, parse_config
from tests.conftest import ApiServer, write_config
from tests.security.conftest import awaiting, make_app


def test_a_form_encoded_cross_site_post_starts_nothing(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    response = client.post("/api/v1/deployments", data={"resume": "false"},
                           headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 415
    response = client.post("/api/v1/deployments", data='{"force": true}',
                           content_type="text/plain")
    assert response.status_code == 415
    assert app.extensions["raydeploy"].store.runs.list_runs() == []


def test_a_host_the_api_does_not_serve_is_refused(tmp_path):
    client = make_app(tmp_path, api={"allowed_hosts": ["ray.example.com"]}).test_client()
    assert client.get("/health", headers={"Host": "rebind.evil.example"}).status_code == 400
    assert client.get("/health", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/health", headers={"Host": "ray.example.com"}).status_code == 200
    assert client.get("/health", headers={"Host": "localhost"}).status_code == 200


def test_wildcard_cors_is_refused_by_the_config():
    with pytest.raises(ConfigError):
        parse_config({"api": {"cors_origins": ["*"]}}, environ={})


def test_a_body_over_the_limit_is_refused(tmp_path):
    client = make_app(tmp_path).test_client()
    big = b'{"reason": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/api/v1/approvals/worker_launch", data=big,
                           content_type="application/json")
    assert response.status_code == 413


def test_deeply_nested_json_is_a_400_not_a_crash(tmp_path):
    client = make_app(tmp_path).test_client()
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/deployments", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert "deeper" in response.get_json()["message"]


def chunked(client, path: str, body: bytes, content_type: str = "application/json"):
    """A chunked request: no Content-Length, the server says it ends the stream (as the dev
    server, gunicorn and a2wsgi do for chunked bodies)."""
    return client.post(path, input_stream=io.BytesIO(body), content_type=content_type,
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_body_is_guarded_like_any_other(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    deep = b"[" * 100_000 + b"]" * 100_000
    response = chunked(client, "/api/v1/deployments", deep)
    assert response.status_code == 400, response.get_json()
    assert "deeper" in response.get_json()["message"]
    assert chunked(client, "/api/v1/deployments", b"resume=true",
                   "application/x-www-form-urlencoded").status_code == 415
    big = b'{"reason": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert chunked(client, "/api/v1/approvals/worker_launch", big).status_code == 413
    assert app.extensions["raydeploy"].store.runs.list_runs() == []


@pytest.mark.integration
def test_a_chunked_deep_body_to_a_real_server_is_a_400_without_a_traceback(tmp_path):
    config = write_config(tmp_path / "c.yaml", {
        "state_dir": str(tmp_path / "state"), "cluster_name": "chunked",
        "project_dir": str(tmp_path)})
    server = ApiServer(config)
    try:
        def body():  # a generator: requests sends it chunked, without a Content-Length
            for _ in range(100):
                yield b"[" * 1000
            for _ in range(100):
                yield b"]" * 1000
        response = requests.post(f"{server.url}/api/v1/deployments", data=body(), timeout=30,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert "deeper" in response.json()["message"]
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_an_operation_without_a_body_takes_a_post_without_one(tmp_path):
    """POST /notifications/test declares no body: a POST without one (and so without a
    Content-Type) is what the spec allows. A body, a form or a cross-site page still is not."""
    app = make_app(tmp_path)
    client = app.test_client()
    response = client.post("/api/v1/notifications/test")
    assert response.status_code == 200, response.get_json()
    assert client.post("/api/v1/notifications/test", data="x=1",
                       content_type="application/x-www-form-urlencoded").status_code == 415
    assert client.post("/api/v1/notifications/test", headers={
        "Origin": "https://evil.example.com"}).status_code == 415
    # operations that take a body still need it as JSON, even an empty one: a cross-site
    # fetch without a body must not start a run
    assert client.post("/api/v1/deployments").status_code == 415
    assert app.extensions["raydeploy"].store.runs.list_runs() == []


def test_a_405_says_which_methods_are_allowed(tmp_path):
    from flask.testing import FlaskClient
    app = make_app(tmp_path)
    client = FlaskClient(app, app.response_class)  # these methods are not in the spec at all
    response = client.open("/health", method="TRACE")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    response = client.put("/api/v1/approvals/worker_launch", json={})
    assert response.status_code == 405
    assert {"GET", "POST", "DELETE"} <= set(response.headers["Allow"].replace(" ", "").split(","))
    # a method the route does not take is a 405 whatever the body (not a 415 for its type)
    response = client.put("/api/v1/plan", data="x", content_type="text/plain")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_unauthenticated_requests_cannot_grow_the_metrics_without_bound(tmp_path):
    """Label values come from a closed set: any method or path a caller makes up folds into
    "other" / "unmatched" (3000 made-up requests used to add 5.5 MB to /metrics)."""
    from flask.testing import FlaskClient
    from prometheus_client.parser import text_string_to_metric_families

    from tests.security.conftest import TOKENS, VIEWER
    app = make_app(tmp_path, tokens=TOKENS)
    client = FlaskClient(app, app.response_class)  # made-up methods are not in the spec

    def series() -> set[tuple]:
        text = client.get("/metrics", headers=VIEWER).get_data(as_text=True)
        return {(s.labels["method"], s.labels["route"], s.labels["status"])
                for family in text_string_to_metric_families(text)
                if family.name == "raydeploy_api_request_seconds" for s in family.samples}

    def made_up(n: int) -> None:
        for i in range(n):
            client.open(f"/api/v1/nope-{i}", method=f"BREW{i}")
            client.open(f"/made/up/{i}", method="GET")
            client.open("/api/v1/checkpoints", method=f"X{i}")
            client.get("/api/v1/checkpoints", headers={"Authorization": f"Bearer guess-{i}"},
                       environ_base={"REMOTE_ADDR": "127.0.0.9"})  # soon rate-limited: 429
    made_up(15)  # past the failed-auth limit too (its 429s are in the closed set)
    before = series()
    made_up(60)
    assert series() == before  # nothing new, however many more
    routes = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    assert {m for m, _, _ in before} <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                         "OPTIONS", "other"}
    assert {r for _, r, _ in before} <= routes
    assert ("other", "unmatched", "401") in before  # refused before routing, still counted


def test_viewers_reading_plans_do_not_make_the_platform_plan_each_time(tmp_path):
    """A checkpoint's plan asks the platform (on CML: key checks, runtime and app listings);
    viewers polling it ate the CML rate limit. Plans are cached briefly."""
    from tests.security.conftest import TOKENS, VIEWER
    app = make_app(tmp_path, tokens=TOKENS)
    svc = app.extensions["raydeploy"]
    calls = []
    listing = svc.ctx.platform.list_apps

    def counted():
        calls.append(1)
        return listing()
    svc.ctx.platform.list_apps = counted  # a spy: the real listing answers
    client = app.test_client()
    first = client.get("/api/v1/checkpoints/head_launch", headers=VIEWER)
    assert first.status_code == 200 and first.get_json()["plan"]["actions"]
    one_plan = len(calls)
    assert one_plan >= 1
    for _ in range(20):
        assert client.get("/api/v1/checkpoints/head_launch", headers=VIEWER).get_json()[
            "plan"] == first.get_json()["plan"]
        assert client.get("/api/v1/approvals/head_launch", headers=VIEWER).status_code == 200
    assert len(calls) == one_plan
    client.get("/api/v1/plan", headers=VIEWER)
    whole_run = len(calls)
    for _ in range(10):
        assert client.get("/api/v1/plan", headers=VIEWER).status_code == 200
    assert len(calls) == whole_run
    svc.invalidate()  # a change made through this API plans anew
    client.get("/api/v1/checkpoints/head_launch", headers=VIEWER)
    assert len(calls) > whole_run


@pytest.mark.integration
def test_event_streams_are_bounded_per_principal_and_health_still_answers(tmp_path):
    config = write_config(tmp_path / "c.yaml", {
        "state_dir": str(tmp_path / "state"), "cluster_name": "streams",
        "project_dir": str(tmp_path), "api": {"sse_per_principal": 3}})
    from store import Store
    run_id = awaiting(Store(tmp_path / "state"))  # a run that stays awaiting: streams stay open
    server = ApiServer(config)
    streams = []
    try:
        def open_stream():
            r = requests.get(f"{server.url}/api/v1/deployments/{run_id}/events", stream=True,
                             timeout=30)
            streams.append(r)
        threads = [threading.Thread(target=open_stream) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(r.status_code for r in streams)
        assert codes == [200, 200, 200, 429, 429, 429], codes
        refused = next(r for r in streams if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) > 0
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        for r in streams:
            r.close()
        server.stop()

"""Side doors 8 and 9: no cross-site form posts, no DNS rebinding, no wildcard CORS; bounded
bodies, shallow JSON, bounded event streams."""
from __future__ import annotations

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
    assert app.extensions["raydeploy"].store.list_runs() == []


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

"""GET /metrics: Prometheus' text format, behind the viewer role unless api.metrics_public,
with what the store records and the API's own latencies; under gunicorn the workers' values
add up (multiprocess mode)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from core.timing import poll_until
from tests.conftest import ROOT, clean_env, write_config


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def app_for(tmp_path, **api):
    from api_server import create_app
    from api_server.settings import Settings
    from cluster.config import parse_config
    config = parse_config({"state_dir": str(tmp_path / "s"), "project_dir": str(tmp_path),
                           "api": api}, environ={})
    return create_app(Settings.from_env(), config=config)


def test_metrics_report_store_records_and_request_latency(tmp_path):
    app = app_for(tmp_path)
    store = app.extensions["raydeploy"].store
    run = store.runs.create_run("deploy", ["prerequisites"], "alice", "cli", {})
    store.runs.update_run(run.id, status="succeeded")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    got = samples(response.get_data(as_text=True))
    assert got[("raydeploy_runs", (("status", "succeeded"),))] == 1
    assert got[("raydeploy_approvals_pending", ())] == 0
    assert got[("raydeploy_api_request_seconds_count",
                (("method", "GET"), ("route", "/health"), ("status", "200")))] >= 1


@pytest.mark.parametrize("public", [False, True])
def test_metrics_need_the_viewer_role_unless_public(tmp_path, monkeypatch, public):
    monkeypatch.setenv("RAYDEPLOY_API_TOKENS", "vic:viewer:viewer-token-0123456789")
    client = app_for(tmp_path, metrics_public=public).test_client()
    assert client.get("/metrics").status_code == (200 if public else 401)
    ok = client.get("/metrics", headers={"Authorization": "Bearer viewer-token-0123456789"})
    assert ok.status_code == 200


@pytest.mark.integration
def test_gunicorn_workers_metrics_add_up(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s"),
                                                "project_dir": str(tmp_path)})
    env = clean_env(RAYDEPLOY_CONFIG=str(config), RAYDEPLOY_API_HOST="127.0.0.1",
                    RAYDEPLOY_API_PORT=str(port), GUNICORN_WORKERS="3")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen([gunicorn, "-c", "api_server/gunicorn.conf.py", "api_server.wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/api/v1/checkpoints", timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        for _ in range(30):  # new connections: spread over the workers
            assert requests.get(url + "/health", timeout=5).status_code == 200
        key = ("raydeploy_api_request_seconds_count",
               (("method", "GET"), ("route", "/health"), ("status", "200")))

        def counted():
            return samples(requests.get(url + "/metrics", timeout=5).text).get(key)
        # a request is counted as its answer goes out: the last may land a moment later
        poll_until(lambda: counted() == 30.0, 15, "every /health request to be counted")
        counts = {counted() for _ in range(6)}  # whichever worker answers, it reports all
        assert counts == {30.0}
    finally:
        from cluster import processes
        processes.stop_session(proc.pid, grace_seconds=3)
        proc.wait()

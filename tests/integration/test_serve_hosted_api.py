"""The management API hosted on the cluster as a Ray Serve app, reached through the proxy."""
from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.integration


def replica_ids(proxy: str) -> list[str]:
    detail = requests.get(f"{proxy}/api/v1/applications/management-api", timeout=10).json()
    return [r["replica_id"] for d in detail["deployments"] for r in d["replicas"]]


def test_the_cluster_serves_its_own_management_api(live_cluster):
    proxy = live_cluster.manager().serve.proxy_url
    health = requests.get(f"{proxy}/health", timeout=10)
    assert health.status_code == 200 and health.json()["ray_connected"] is True
    status = requests.get(f"{proxy}/api/v1/cluster/status", timeout=10).json()
    assert status["healthy"] and status["alive_nodes"] == 3
    assert status["total_applications"] == 2  # hello + the management API
    info = requests.get(f"{proxy}/api/v1/cluster/info", timeout=10).json()
    assert info["management_api_url"] == proxy
    assert "management API: " + proxy in live_cluster.deploy_output
    # user apps keep their own prefixes
    assert requests.get(f"{proxy}/hello", timeout=10).json()["message"] == "hello, world"
    # and validation checks it through the proxy
    checks = {c["name"]: c for c in requests.get(f"{proxy}/api/v1/cluster/health", timeout=30)
              .json()["checks"]}
    assert checks["http:management-api"]["ok"] and checks["http:hello"]["ok"]


def test_add_and_remove_a_worker_through_the_serve_hosted_api(cluster):
    proxy = cluster.manager().serve.proxy_url
    added = requests.post(f"{proxy}/api/v1/resources/nodes/add", json={"cpu": 1, "memory": 1},
                          timeout=200)
    assert added.status_code == 201, added.text
    app_id = added.json()["app_id"]
    nodes = requests.get(f"{proxy}/api/v1/nodes", timeout=10).json()
    assert nodes["alive_nodes"] == 4
    assert any(n["platform_app_id"] == app_id and n["alive"] for n in nodes["nodes"])
    removed = requests.delete(f"{proxy}/api/v1/resources/nodes/{app_id}", timeout=120)
    assert removed.status_code == 202, removed.text  # destructive: waits for an approval
    pending = removed.json()["pending"]
    approved = requests.post(f"{proxy}/api/v1/approvals/node_remove", json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]}, timeout=10)
    assert approved.status_code == 201, approved.text
    run_id = removed.json()["run_id"]
    deadline = time.monotonic() + 120
    while requests.get(f"{proxy}/api/v1/deployments/{run_id}", timeout=10).json()["status"] \
            != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    after = requests.get(f"{proxy}/api/v1/nodes", timeout=10).json()
    assert after["total_nodes"] == 3 and app_id not in {n["platform_app_id"] for n in after["nodes"]}
    assert requests.get(f"{proxy}/hello", timeout=10).status_code == 200


def test_redeploy_without_change_leaves_its_replica_untouched(live_cluster):
    proxy = live_cluster.manager().serve.proxy_url
    before = replica_ids(proxy)
    assert len(before) == 1
    result = live_cluster.cli("--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    serve_line = next(line for line in result.stdout.splitlines() if "serve_deploy" in line)
    assert "skipped (satisfied)" in serve_line
    assert replica_ids(proxy) == before

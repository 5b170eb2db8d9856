"""The REST API on a real server against the shared real cluster: runs with approvals and
SSE, approvals across CLI and API, nodes, Serve applications (each test leaves the cluster
as the ``cluster`` fixture restores it)."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.conftest import ApiServer, spawn_cli, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gated(live_cluster, tmp_path_factory):
    """A server whose config gates job_creation (approvals.required) on the shared cluster."""
    path = write_config(tmp_path_factory.mktemp("api") / "gated.yaml",
                        {**live_cluster.config, "approvals": {"required": ["job_creation"]}})
    server = ApiServer(path)
    yield server, path
    server.stop()


def wait_for(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


def run_status(url, run_id):
    return requests.get(f"{url}/api/v1/deployments/{run_id}", timeout=10).json()["status"]


def test_api_run_stops_at_a_gate_and_an_api_approval_lets_it_finish(gated):
    server, _ = gated
    url = server.url
    started = requests.post(f"{url}/api/v1/deployments",
                            json={"checkpoints": ["job_creation"], "force": True}, timeout=10)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    events, done = [], threading.Event()

    def follow():
        with requests.get(f"{url}/api/v1/deployments/{run_id}/events", stream=True, timeout=120) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    events.append(line[7:])
                    if line == "event: end":
                        break
        done.set()
    threading.Thread(target=follow, daemon=True).start()

    wait_for(lambda: run_status(url, run_id) == "awaiting_approval")
    pending = requests.get(f"{url}/api/v1/approvals", params={"state": "pending"}, timeout=10).json()
    assert [(a["checkpoint"], a["run_id"]) for a in pending["approvals"]] == [("job_creation", run_id)]
    gate = requests.get(f"{url}/api/v1/approvals/job_creation", timeout=10).json()
    assert gate["awaiting"] and not gate["gate"]["destructive"]
    assert {a["kind"] for a in gate["plan"]["actions"]} == {"run"}
    # one run at a time: the waiting run holds the lease
    busy = requests.post(f"{url}/api/v1/deployments", json={}, timeout=10)
    assert busy.status_code == 409 and "lease" in busy.json()["message"]

    approval = requests.post(f"{url}/api/v1/approvals/job_creation",
                             json={"approved_by": "tester", "reason": "rebuild",
                                   "run_id": gate["run_id"],
                                   "plan_fingerprint": gate["plan_fingerprint"]}, timeout=10)
    assert approval.status_code == 201, approval.text
    wait_for(lambda: run_status(url, run_id) == "succeeded")
    assert done.wait(30)
    for kind in ("run.started", "checkpoint.started", "approval.required", "approval.approved",
                 "checkpoint.succeeded", "run.finished", "end"):
        assert kind in events, events
    run = requests.get(f"{url}/api/v1/deployments/{run_id}", timeout=10).json()
    assert run["checkpoints"][0]["status"] == "succeeded" and run["checkpoints"][0]["duration"] > 0


def test_a_cli_approval_unblocks_an_api_run(gated, live_cluster):
    server, path = gated
    run_id = requests.post(f"{server.url}/api/v1/deployments",
                           json={"checkpoints": ["job_creation"], "force": True}, timeout=10).json()["id"]
    wait_for(lambda: run_status(server.url, run_id) == "awaiting_approval")
    result = live_cluster.cli("approve", "job_creation", "--operator", "carol", config=path)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: run_status(server.url, run_id) == "succeeded")


def test_an_api_approval_unblocks_a_waiting_cli_run(gated):
    server, path = gated
    proc = spawn_cli("--checkpoint", "job_creation", "--force", "--operator", "dave", config=path)
    try:
        for line in proc.stdout:
            if "waiting for an approval" in line:
                break
        gate = requests.get(f"{server.url}/api/v1/approvals/job_creation", timeout=10).json()
        response = requests.post(f"{server.url}/api/v1/approvals",
                                 json={"checkpoint": "job_creation", "approved_by": "erin",
                                       "run_id": gate["run_id"],
                                       "plan_fingerprint": gate["plan_fingerprint"]},
                                 timeout=10)
        assert response.status_code == 201, response.text
        assert proc.wait(60) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_add_and_remove_a_node(gated, cluster):
    url = gated[0].url
    before = requests.get(f"{url}/api/v1/resources/capacity", timeout=10).json()
    added = requests.post(f"{url}/api/v1/resources/nodes/add",
                          json={"cpu": 1, "memory": 1, "gpus": 0, "node_type": "worker"}, timeout=200)
    assert added.status_code == 201, added.text
    node = added.json()
    assert node["status"] == "success" and node["node_type"] == "worker" and node["cpu"] == 1
    nodes = requests.get(f"{url}/api/v1/resources/nodes", timeout=10).json()
    row = next(n for n in nodes["nodes"] if n["platform_app_id"] == node["app_id"])
    assert row["alive"] and row["node_type"] == "worker" and row["resources"]["CPU"] == 1
    assert nodes["alive_nodes"] == nodes["total_nodes"] == 4
    assert requests.get(f"{url}/api/v1/nodes", timeout=10).json()["total_nodes"] == 4
    grown = requests.get(f"{url}/api/v1/resources/capacity", timeout=10).json()
    assert grown["total_cpus"] == before["total_cpus"] + 1
    head = next(n for n in nodes["nodes"] if n["node_type"] == "head")
    refused = requests.delete(f"{url}/api/v1/resources/nodes/{head['platform_app_id']}", timeout=10)
    assert refused.status_code == 409
    # removing a node is destructive: a one-step run that waits for an approval
    removed = requests.delete(f"{url}/api/v1/resources/nodes/{node['app_id']}", timeout=120)
    assert removed.status_code == 202, removed.text
    pending = removed.json()["pending"]
    assert pending["checkpoint"] == "node_remove" and pending["gate"]["destructive"]
    assert [a["name"] for a in pending["plan"]["actions"]] == [node["app_name"]]
    approved = requests.post(f"{url}/api/v1/approvals/node_remove",
                             json={"acknowledge_risks": True, "run_id": pending["run_id"],
                                   "plan_fingerprint": pending["plan_fingerprint"]}, timeout=10)
    assert approved.status_code == 201, approved.text
    wait_for(lambda: run_status(url, removed.json()["run_id"]) == "succeeded", timeout=120)
    after = requests.get(f"{url}/api/v1/resources/nodes", timeout=10).json()
    assert node["app_id"] not in {n["platform_app_id"] for n in after["nodes"]}
    assert after["total_nodes"] == 3
    capacity = requests.get(f"{url}/api/v1/resources/capacity", timeout=10).json()
    assert capacity["total_cpus"] == before["total_cpus"]


def test_deploy_and_remove_an_app_keeps_the_others(gated, cluster):
    url = gated[0].url
    proxy = cluster.manager().serve.proxy_url
    body = {"name": "greeter", "import_path": "examples.apps.hello:build", "route_prefix": "/greet",
            "args": {"greeting": "hi"}, "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}
    created = requests.post(f"{url}/api/v1/applications", json=body, timeout=120)
    assert created.status_code == 202, created.text
    assert {k: created.json()[k] for k in ("status", "name", "route_prefix")} == {
        "status": "success", "name": "greeter", "route_prefix": "/greet"}
    wait_for(lambda: requests.get(f"{url}/api/v1/applications/greeter", timeout=10).json()
             .get("status") == "RUNNING", timeout=120)
    answer = wait_for(lambda: (r := requests.get(f"{proxy}/greet", timeout=5)).ok and r, timeout=60)
    assert answer.json()["message"] == "hi, world"
    detail = requests.get(f"{url}/api/v1/applications/greeter", timeout=10).json()
    assert detail["deployments"][0]["name"] == "Hello" and detail["num_replicas"] == 1
    clash = requests.post(f"{url}/api/v1/applications",
                          json={**body, "name": "other", "route_prefix": "/hello"}, timeout=60)
    assert clash.status_code == 409 and "hello" in clash.json()["message"]
    listed = requests.get(f"{url}/api/v1/applications", timeout=10).json()
    assert {a["name"] for a in listed["applications"]} == {"hello", "greeter", "management-api"}
    deleted = requests.delete(f"{url}/api/v1/applications/greeter", timeout=60)
    pending = deleted.json()["pending"]
    assert deleted.status_code == 202 and pending["checkpoint"] == "app_delete"
    assert requests.post(f"{url}/api/v1/approvals/app_delete", json={
        "acknowledge_risks": True, "run_id": pending["run_id"],
        "plan_fingerprint": pending["plan_fingerprint"]}, timeout=10).status_code == 201
    wait_for(lambda: requests.get(f"{url}/api/v1/applications/greeter", timeout=10).status_code == 404,
             timeout=60)
    assert requests.get(f"{proxy}/hello", timeout=10).json()["message"] == "hello, world"
    status = requests.get(f"{url}/api/v1/cluster/status", timeout=10).json()
    assert status["healthy"] and status["total_applications"] == 2 and status["alive_nodes"] == 3
    info = requests.get(f"{url}/api/v1/cluster/info", timeout=10).json()
    assert info["cluster_name"] == "rdtest" and info["head_address"].startswith("127.0.0.")
    health = requests.get(f"{url}/api/v1/cluster/health", timeout=30).json()
    assert health["healthy"], json.dumps(health)

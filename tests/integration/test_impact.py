"""The scenario that made this: an app deployed through the API fits only while both workers
exist; lowering workers.count is planned as BREAKING (naming the app and the numbers), cannot
be approved without acknowledging that, and a run that goes ahead anyway does not report
success over the broken app."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import ApiServer, write_config

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return value


def test_a_plan_that_strands_an_apps_replicas_is_breaking_and_never_reported_a_success(
        cluster, tmp_path):
    quick = {**cluster.config, "workers": {**cluster.config["workers"], "drain_timeout_seconds": 5}}
    # the run that breaks the app gives it 5 s to serve again; the API that deploys it waits
    # as long as a deploy does (three replicas start on a loaded machine)
    config = write_config(tmp_path / "quick.yaml", {
        **quick, "serve": {**cluster.config["serve"], "verify_timeout_seconds": 5}})
    server = ApiServer(write_config(tmp_path / "api.yaml", quick))
    try:
        # three 0.7 GB model replicas on three 1 GB nodes: one per node, no room for more
        deployed = requests.post(f"{server.url}/api/v1/applications", timeout=60, json={
            "name": "pipeline", "import_path": "examples.apps.pipeline:build",
            "route_prefix": "/pipeline", "args": {"replicas": 3, "memory_gb": 0.7}})
        assert deployed.status_code == 202, deployed.text
        wait_for(lambda: requests.get(f"{server.url}/api/v1/applications/pipeline",
                                      timeout=10).json().get("status") == "RUNNING")
        planned = cluster.cli("--deploy", "--no-wait", workers=1, config=config)
        assert planned.returncode == 3, planned.stdout + planned.stderr
        assert "BREAKING" in planned.stdout
        assert "pipeline needs 1 x 0.7 GiB memory" in planned.stdout, planned.stdout
        assert "--acknowledge-breaking" in planned.stdout
        refused = cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=1,
                              config=config)
        assert refused.returncode == 2 and "acknowledge_breaking" in refused.stderr
        approved = cluster.cli("approve", "worker_launch", "--acknowledge-risks",
                               "--acknowledge-breaking", workers=1, config=config)
        assert approved.returncode == 0, approved.stderr
        went_ahead = cluster.cli("--resume", workers=1, config=config)
        assert went_ahead.returncode == 1, went_ahead.stdout + went_ahead.stderr
        assert "pipeline no longer serves" in went_ahead.stderr
        assert cluster.store().runs.latest_run().status == "failed"
    finally:
        removed = requests.delete(f"{server.url}/api/v1/applications/pipeline", timeout=60)
        if removed.status_code == 202:
            pending = removed.json()["pending"]
            requests.post(f"{server.url}/api/v1/approvals/app_delete", json={
                "acknowledge_risks": True, "run_id": pending["run_id"],
                "plan_fingerprint": pending["plan_fingerprint"]}, timeout=10)
            wait_for(lambda: requests.get(f"{server.url}/api/v1/applications/pipeline",
                                          timeout=10).status_code == 404, timeout=60)
        server.stop()

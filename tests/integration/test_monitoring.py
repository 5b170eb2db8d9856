"""Monitoring end to end: a real Prometheus (Debian's package, run by the deploy as a platform
app) scrapes a real local cluster, the cluster's management API and a standalone API server.

Skipped, with the reason, when prometheus is not installed (``make test`` installs it when it
can: ``make prometheus``)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from cluster.prometheus import NODE_CPU_METRIC, PrometheusClient, prometheus_binary
from tests.conftest import ROOT, ApiServer, base_config, cli, stop_recorded_apps, wait_until, write_config

pytestmark = pytest.mark.integration

if prometheus_binary() is None:
    pytest.skip("prometheus is not installed (make prometheus: Debian's package)",
                allow_module_level=True)


def test_prometheus_scrapes_every_node_and_the_control_plane(tmp_path):
    state = tmp_path / "state"
    path = tmp_path / "cluster.yaml"
    config = base_config(state, name="rdmon", workers=1,
                         monitoring={"enabled": True, "scrape_interval_seconds": 2})
    write_config(path, config)
    api = ApiServer(path)  # the standalone control plane, scraped too
    try:
        config["monitoring"]["api_targets"] = [f"127.0.0.1:{api.port}"]
        write_config(path, config)
        deployed = cli("--deploy", "--auto-approve", config=path, timeout=400)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "monitoring" in deployed.stdout and "prometheus" in deployed.stdout

        status = cli("--status", config=path)
        url = next(line.split(": ", 1)[1].split()[0] for line in status.stdout.splitlines()
                   if line.strip().startswith("prometheus"))
        info = requests.get(f"{api.url}/api/v1/cluster/info", timeout=10).json()
        assert info["prometheus_url"] == url
        prometheus = PrometheusClient(url)

        # every Ray node's own metrics, by its address
        nodes = requests.get(f"{api.url}/api/v1/resources/nodes", timeout=10).json()
        ips = {n["node_ip"] for n in nodes["nodes"] if n["alive"]}
        assert len(ips) == 2

        def cpu_everywhere():
            rows = prometheus.query(NODE_CPU_METRIC)
            return {labels.get("ip") for labels, _ in rows} >= ips and rows
        rows = wait_until(cpu_everywhere, 90, f"{NODE_CPU_METRIC} for {sorted(ips)}", interval=1)
        assert all(labels["ray_io_cluster"] == "rdmon" for labels, _ in rows)

        # the control plane: the cluster's management API and the standalone server both
        # report the deploy run that just succeeded
        def runs_reported():
            rows = prometheus.query('raydeploy_runs{status="succeeded"}')
            return {labels["job"] for labels, value in rows if value >= 1} >= {
                "raydeploy-api", "raydeploy-cluster-api"}
        wait_until(runs_reported, 60, "raydeploy_runs from both APIs", interval=1)
        durations = prometheus.query("raydeploy_checkpoint_duration_seconds_count")
        assert {labels["checkpoint"] for labels, _ in durations} >= {"head_launch", "monitoring"}

        grafana = sorted(p.name for p in (state / "grafana").glob("*.json"))
        assert "default_grafana_dashboard.json" in grafana, grafana  # Ray's own, copied
        from checkpoints.factory import make_context
        from cluster.config import load_config
        dashboard = make_context(load_config(path, environ={})).cluster.inventory.dashboard()
        assert dashboard.prometheus_health()[0]  # the dashboard's metrics pages work

        check = subprocess.run([sys.executable, "-m", "validation", "--config", str(path)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0 and "PASS  monitoring" in check.stdout, check.stdout

        again = cli("--deploy", config=path, timeout=300)  # converged: nothing to do
        assert again.returncode == 0 and "monitoring                 skipped (satisfied)" in \
            again.stdout, again.stdout
    finally:
        down = cli("--teardown", "--auto-approve", config=path, timeout=300)
        api.stop()
        stop_recorded_apps(state)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not PrometheusClient(url, timeout=1).ready()  # stopped with the cluster

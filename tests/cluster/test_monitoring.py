"""Where the cluster's Prometheus is and what it must scrape (cluster/monitoring.py), on a
FakeRay and a fake clock; Prometheus's answers come through a scripted transport under the
real PrometheusClient (a real Prometheus: tests/integration)."""
from __future__ import annotations

import json

import pytest
import requests

from cluster import monitoring
from cluster.layout import LAYOUT_KEY
from cluster.manager import ClusterManager
from cluster.monitoring import monitoring_check, prometheus_url, scrape_targets, target_problems
from cluster.prometheus import PrometheusClient
from tests.fakes import FakeClock, FakeDashboard, world

LAYOUT = {"port": 6379, "dashboard_port": 8265, "serve_port": 8000, "client_port": 10001,
          "agent_port": 52365, "worker_ports": [26000, 26099], "prometheus_port": 9090}


class PrometheusTargets:
    """What Prometheus says it scrapes, as its /api/v1/targets answers it (a transport under
    PrometheusClient); ``targets`` may change while a wait goes on."""

    def __init__(self):
        self.targets: list[dict] = []
        self.down = False  # Prometheus itself does not answer
        self.urls: list[str] = []

    def target(self, job, instance, health="up", error=""):
        self.targets.append({"labels": {"job": job, "instance": instance}, "health": health,
                             "lastError": error})

    def get(self, url, params=None, timeout=None):
        self.urls.append(url)
        if self.down:
            raise requests.ConnectionError("refused")
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"status": "success", "data": {
            "activeTargets": self.targets, "droppedTargets": []}}).encode()
        return response


class Dashboard(FakeDashboard):
    prometheus_seen = (True, "prometheus running")

    def prometheus_health(self):
        return self.prometheus_seen


@pytest.fixture
def scraped(monkeypatch):
    answers = PrometheusTargets()

    def client(url, timeout=5.0):
        real = PrometheusClient(url, timeout)
        real.session = answers
        return real
    monkeypatch.setattr(monitoring, "PrometheusClient", client)
    return answers


def monitored(tmp_path, mgmt=True, **monitoring_section):
    """A world with monitoring on, its cluster built on a fake clock."""
    w = world(tmp_path, mgmt=mgmt, monitoring={"enabled": True, **monitoring_section})
    w.ctx.store.kv.set(LAYOUT_KEY, LAYOUT)
    clock = FakeClock()
    cluster = ClusterManager(w.ctx.config, w.ctx.store, w.platform, clock,
                             lambda url, token: Dashboard(w.ray, url))
    return w, cluster, clock


def head_ip(w) -> str:
    return next(n["node_ip"] for n in w.ray.nodes if n["is_head_node"])


# -- where Prometheus is ---------------------------------------------------------------------------
def test_prometheus_answers_on_the_heads_address_at_the_recorded_port(tmp_path):
    w, cluster, _ = monitored(tmp_path)
    assert prometheus_url(cluster) == f"http://{head_ip(w)}:9090"


def test_without_a_head_or_a_recorded_port_there_is_no_prometheus_address(tmp_path):
    w = world(tmp_path)  # its recorded layout has no prometheus port
    assert prometheus_url(w.ctx.cluster) is None
    headless = world(tmp_path / "headless", with_head=False)
    headless.ctx.store.kv.set(LAYOUT_KEY, LAYOUT)
    assert prometheus_url(headless.ctx.cluster) is None


# -- what it must scrape ---------------------------------------------------------------------------
def test_the_management_api_on_the_cluster_is_scraped_through_the_serve_proxy(tmp_path):
    w, cluster, _ = monitored(tmp_path, api_targets=["cp.example:8080"])
    assert scrape_targets(cluster) == [
        {"job": "raydeploy-cluster-api", "targets": [f"{head_ip(w)}:8000"],
         "metrics_path": "/metrics"},
        {"job": "raydeploy-api", "targets": ["cp.example:8080"]}]


def test_a_moved_management_api_is_scraped_at_its_prefix_with_the_viewer_token(tmp_path):
    w = world(tmp_path, mgmt=True, monitoring={"enabled": True, "api_token_file": "/etc/tok"},
              serve={"applications": [], "management_api": {"route_prefix": "/mgmt/"}})
    w.ctx.store.kv.set(LAYOUT_KEY, LAYOUT)
    [target] = scrape_targets(w.ctx.cluster)
    assert target["metrics_path"] == "/mgmt/metrics"
    assert target["bearer_token_file"] == "/etc/tok"


def test_without_a_management_api_or_api_targets_there_is_nothing_but_ray(tmp_path):
    _, cluster, _ = monitored(tmp_path, mgmt=False)
    assert scrape_targets(cluster) == []


# -- whether it does -------------------------------------------------------------------------------
def test_every_alive_node_and_every_target_up_is_no_problem(tmp_path, scraped):
    w, cluster, clock = monitored(tmp_path, mgmt=False, api_targets=["cp.example:8080"])
    w.worker(1)
    for node in w.ray.nodes:
        scraped.target("ray", f"{node['node_ip']}:20001")
    scraped.target("raydeploy-api", "cp.example:8080")
    assert target_problems(cluster) == []
    assert scraped.urls == [f"http://{head_ip(w)}:9090/api/v1/targets"]
    assert clock.slept == 0


def test_nodes_not_scraped_and_targets_down_or_missing_are_named(tmp_path, scraped):
    w, cluster, _ = monitored(tmp_path, api_targets=["cp.example:8080"])
    worker, _ = w.worker(1)
    scraped.target("ray", f"{head_ip(w)}:20001")
    scraped.target("ray", f"{worker.ip}:20001", health="down", error="connection refused")
    scraped.target("raydeploy-api", "cp.example:8080", health="down", error="401 Unauthorized")
    assert target_problems(cluster) == [
        f"prometheus does not scrape the Ray node(s) {worker.ip}",
        "prometheus target raydeploy-cluster-api: not listed",
        "prometheus target raydeploy-api: cp.example:8080 (401 Unauthorized)"]


def test_a_prometheus_that_does_not_answer_is_said_so(tmp_path, scraped):
    w, cluster, _ = monitored(tmp_path, mgmt=False)
    scraped.down = True
    assert target_problems(cluster) == [
        f"prometheus at http://{head_ip(w)}:9090 does not answer (ConnectionError)"]


def test_without_a_head_there_is_no_prometheus_to_ask(tmp_path, scraped):
    w = world(tmp_path, with_head=False, monitoring={"enabled": True})
    assert target_problems(w.ctx.cluster) == ["monitoring: no head, so no prometheus address"]
    assert scraped.urls == []


def test_waiting_gives_the_first_scrapes_time(tmp_path, scraped):
    w, cluster, clock = monitored(tmp_path, mgmt=False, scrape_interval_seconds=5)
    said = []

    def first_scrape(line):
        said.append(line)
        if len(said) == 4:
            scraped.target("ray", f"{head_ip(w)}:20001")
    assert target_problems(cluster, wait=True, on_wait=first_scrape) == []
    assert clock.slept == 4.0  # tried once a second


def test_a_wait_ends_after_three_scrape_intervals_and_twenty_seconds(tmp_path, scraped):
    _, cluster, clock = monitored(tmp_path, mgmt=False, scrape_interval_seconds=5)
    problems = target_problems(cluster, wait=True)
    assert len(problems) == 1 and "does not scrape the Ray node(s)" in problems[0]
    assert clock.slept == 3 * 5 + 20


# -- validation's view -----------------------------------------------------------------------------
def test_the_monitoring_check_passes_when_everything_is_scraped_and_the_dashboard_sees_it(
        tmp_path, scraped):
    w, cluster, _ = monitored(tmp_path, mgmt=False)
    scraped.target("ray", f"{head_ip(w)}:20001")
    check = monitoring_check(cluster)
    assert check.ok and check.name == "monitoring"
    assert check.detail == (f"prometheus at http://{head_ip(w)}:9090 scrapes every Ray node "
                            "and the control plane")


def test_the_monitoring_check_fails_when_rays_dashboard_does_not_reach_prometheus(
        tmp_path, scraped, monkeypatch):
    w, cluster, _ = monitored(tmp_path, mgmt=False)
    scraped.target("ray", f"{head_ip(w)}:20001")
    monkeypatch.setattr(Dashboard, "prometheus_seen", (False, "connection refused"))
    check = monitoring_check(cluster)
    assert not check.ok
    assert check.detail == (f"Ray's dashboard does not reach prometheus at "
                            f"http://{head_ip(w)}:9090: connection refused")

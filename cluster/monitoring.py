"""Where the cluster's Prometheus is, what it must scrape, and whether it does (used by the
monitoring checkpoint, validation, --status and the API)."""
from __future__ import annotations

import requests

from cluster.prometheus import PrometheusClient, PrometheusError
from core.errors import DomainError
from core.timing import TimedOut, poll_until


def prometheus_url(cluster) -> str | None:
    """Where this cluster's Prometheus answers (the head's address, the layout's port)."""
    inventory = cluster.inventory
    head, layout = inventory.head_app(), cluster.layout.current()
    ip = inventory.node_ip(head) if head else None
    if not (ip and layout and layout.prometheus_port):
        return None
    return f"http://{ip}:{layout.prometheus_port}"


def scrape_targets(cluster) -> list[dict]:
    """The control plane's /metrics: the cluster's management API and monitoring.api_targets."""
    config, targets = cluster.config, []
    token_file = config.monitoring.api_token_file
    auth = {"bearer_token_file": token_file} if token_file else {}
    mgmt_url = cluster.serve.management_api_url()
    if mgmt_url:
        host = mgmt_url.split("//", 1)[1].split("/", 1)[0]
        path = config.serve.management_api.route_prefix.rstrip("/") + "/metrics"
        targets.append({"job": "raydeploy-cluster-api", "targets": [host], "metrics_path": path,
                        **auth})
    if config.monitoring.api_targets:
        targets.append({"job": "raydeploy-api", "targets": list(config.monitoring.api_targets),
                        **auth})
    return targets


def target_problems(cluster, wait: bool = False, on_wait=None) -> list[str]:
    """What Prometheus does not scrape: every ALIVE Ray node and every control-plane target
    must be ``up``. ``wait``: give the first scrapes time (Ray lists a new node within ~5 s,
    Prometheus re-reads the list every 5 s, then scrapes on its interval)."""
    url = prometheus_url(cluster)
    if url is None:
        return ["monitoring: no head, so no prometheus address"]
    client = PrometheusClient(url, timeout=3)
    expected_jobs = [t["job"] for t in scrape_targets(cluster)]
    problems: list[str] = []

    def check():
        problems.clear()
        try:
            targets = client.targets()
            alive = cluster.inventory.alive_ips()
        except (PrometheusError, DomainError) as e:
            problems.append(f"prometheus at {url}: {e}")
            return False
        except (requests.RequestException, ValueError) as e:  # unreachable, or not its JSON
            problems.append(f"prometheus at {url} does not answer ({type(e).__name__})")
            return False
        ray_up = {t["instance"].rsplit(":", 1)[0] for t in targets
                  if t["job"] == "ray" and t["health"] == "up"}
        missing = sorted(alive - ray_up)
        if missing:
            problems.append("prometheus does not scrape the Ray node(s) " + ", ".join(missing))
        for job in expected_jobs:
            mine = [t for t in targets if t["job"] == job]
            down = [f"{t['instance']} ({t['lastError'] or t['health']})" for t in mine
                    if t["health"] != "up"]
            if not mine or down:
                problems.append(f"prometheus target {job}: " + (", ".join(down) or "not listed"))
        return not problems
    limit = 3 * cluster.config.monitoring.scrape_interval_seconds + 20 if wait else 0
    try:
        poll_until(check, limit, "prometheus to scrape every target", on_wait=on_wait,
                   clock=cluster.clock, interval=1.0)
    except TimedOut:
        pass
    return list(problems)


def monitoring_check(cluster):
    """Validation's view: Prometheus scrapes every node and the control plane, and Ray's
    dashboard reaches it (its metrics pages). A target's health is its last scrape's: one that
    failed on a busy node (a node that has just joined, starting a worker for validation's
    job) is given the scrapes ``target_problems`` waits for before it counts as down."""
    from cluster.health import Check
    problems = target_problems(cluster, wait=True)
    url = prometheus_url(cluster)
    try:
        seen, detail = cluster.inventory.dashboard().prometheus_health()
    except DomainError as e:
        seen, detail = False, str(e)
    if not seen:
        problems.append(f"Ray's dashboard does not reach prometheus at {url}: {detail}")
    return Check("monitoring", not problems, "; ".join(problems) or f"prometheus at {url} "
                 f"scrapes every Ray node and the control plane")

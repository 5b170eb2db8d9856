"""Live checks of a deployed cluster, shared by the validation checkpoint, ``verify`` steps,
``python -m validation`` and the API's health endpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from cluster.manager import ClusterManager
from cluster.serve import app_paths
from core.errors import DomainError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def head_check(cluster: ClusterManager) -> Check:
    inventory = cluster.inventory
    head = inventory.head_app()
    if head is None:
        return Check("head", False, "no running head app")
    try:
        ok = inventory.dashboard().healthy()
    except DomainError as e:
        return Check("head", False, str(e))
    return Check("head", ok, f"{head.name} GCS at {inventory.head_address()}, dashboard "
                             f"{inventory.dashboard_url()} {'healthy' if ok else 'not answering'}")


def node_checks(cluster: ClusterManager, expected_workers: int) -> list[Check]:
    try:
        nodes = cluster.inventory.nodes()
    except DomainError as e:
        return [Check("nodes_alive", False, str(e))]
    alive = [n for n in nodes if n.alive]
    checks = [Check("nodes_alive", len(alive) == 1 + expected_workers and len(alive) == len(nodes),
                    f"{len(alive)} of {len(nodes)} nodes ALIVE, expected {1 + expected_workers}")]
    missing = [n.platform_app_name for n in nodes if n.platform_app_id and not n.alive]
    if missing:
        checks.append(Check("apps_have_nodes", False, "no ALIVE Ray node for " + ", ".join(missing)))
    return checks


def resource_checks(cluster: ClusterManager) -> list[Check]:
    config = cluster.config
    problems = []
    for node in cluster.inventory.nodes():
        if not node.alive:
            continue
        want = config.head if node.node_type == "head" else config.workers
        gpus = 0 if node.node_type == "head" else want.gpus
        got_cpu, got_gpu = node.resources.get("CPU", 0), node.resources.get("GPU", 0)
        if (got_cpu, got_gpu) != (want.cpu, gpus):
            problems.append(f"{node.platform_app_name or node.node_ip}: CPU {got_cpu} GPU "
                            f"{got_gpu}, configured CPU {want.cpu} GPU {gpus}")
    return [Check("resources", not problems, "; ".join(problems) or "every node as configured")]


def serve_checks(cluster: ClusterManager, probe: bool = True) -> list[Check]:
    apps = app_paths(cluster.config)
    if not apps:
        return []
    try:
        status = cluster.serve.status()
    except DomainError as e:
        return [Check("serve_apps", False, str(e))]
    checks = []
    for name, path in apps:
        state = status.get(name, {}).get("status", "MISSING")
        checks.append(Check(f"app:{name}", state == "RUNNING", f"{name} is {state}"))
        if probe and state == "RUNNING":
            ok, detail = cluster.serve.probe(path)
            checks.append(Check(f"http:{name}", ok, detail))
    return checks


def all_checks(cluster: ClusterManager, health_only: bool = False) -> list[Check]:
    head = head_check(cluster)
    if not head.ok:
        return [head]
    checks = [head, *node_checks(cluster, cluster.config.workers.count)]
    if not health_only:
        checks += resource_checks(cluster) + serve_checks(cluster)
    return checks

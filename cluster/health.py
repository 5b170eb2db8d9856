"""Live checks of a deployed cluster, shared by the validation checkpoint, ``verify`` steps,
``python -m validation`` and the API's health endpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from cluster.manager import ClusterManager
from cluster.serve import app_paths
from core.errors import DomainError
from core.timing import TimedOut, poll_until


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def head_check(cluster: ClusterManager) -> Check:
    inventory = cluster.inventory
    if inventory.address is not None:  # RAY_ADDRESS: that cluster, whatever the platform lists
        try:
            ok = inventory.dashboard().healthy()
        except DomainError as e:
            return Check("head", False, str(e))
        return Check("head", ok, f"RAY_ADDRESS {inventory.address.text}: dashboard "
                                 f"{inventory.dashboard_url()} "
                                 f"{'healthy' if ok else 'not answering'}")
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
    """Every app on the cluster, configured or not: RUNNING, no replica stuck (STARTING or
    PENDING longer than serve.stuck_replica_seconds: Ray's own message is the detail), and
    answering through the proxy."""
    configured = dict(app_paths(cluster.config))
    try:
        status = cluster.serve.status()
    except DomainError as e:
        return [Check("serve_apps", False, str(e))] if configured else []
    checks = []
    for name in sorted(set(configured) | set(status)):
        app = status.get(name) or {}
        state = app.get("status", "MISSING")
        checks.append(Check(f"app:{name}", state == "RUNNING", f"{name} is {state}"
                            + (f": {app['message'].strip()[-300:]}" if app.get("message")
                               and state != "RUNNING" else "")))
        stuck = stuck_replicas(app, cluster.config.serve.stuck_replica_seconds, cluster.clock.time())
        if stuck:
            checks.append(Check(f"replicas:{name}", False, "; ".join(stuck)))
        path = configured.get(name) or app.get("route_prefix")
        if probe and state == "RUNNING" and path:
            ok, detail = cluster.serve.probe(path)
            checks.append(Check(f"http:{name}", ok, detail))
    return checks


def stuck_replicas(app: dict, threshold: float, now: float) -> list[str]:
    """Replicas that are not RUNNING after ``threshold`` seconds, with Ray's message."""
    out = []
    for dep, detail in (app.get("deployments") or {}).items():
        for replica in detail.get("replicas") or []:
            age = now - (replica.get("start_time_s") or now)
            if replica.get("state") != "RUNNING" and age > threshold:
                message = (detail.get("message") or "").strip()[-300:]
                out.append(f"replica {replica.get('replica_id')} of {dep} is "
                           f"{replica.get('state')} for {age:.0f}s"
                           + (f": {message}" if message else ""))
    return out


def serving(cluster: ClusterManager) -> dict[str, str]:
    """The apps that serve now (RUNNING, every replica RUNNING): name -> path to probe."""
    configured = dict(app_paths(cluster.config))
    try:
        status = cluster.serve.status()
    except DomainError:
        return {}
    out = {}
    for name, app in status.items():
        replicas = [r for d in (app.get("deployments") or {}).values()
                    for r in d.get("replicas") or []]
        if app.get("status") == "RUNNING" and all(r.get("state") == "RUNNING" for r in replicas):
            out[name] = configured.get(name) or app.get("route_prefix") or ""
    return out


def still_serving(cluster: ClusterManager, before: dict[str, str], timeout: float = 60,
                  on_wait=None) -> list[str]:
    """What of ``before`` (see ``serving``) no longer serves, after waiting up to
    ``timeout`` for it to come back (replicas re-placed after a node left, say)."""
    broken: list[str] = []

    def settled() -> bool:
        broken.clear()
        now = serving(cluster)
        for name, path in sorted(before.items()):
            if name not in now:
                broken.append(f"{name} no longer serves: {_state(cluster, name)}")
            elif path:
                ok, detail = cluster.serve.probe(path)
                if not ok:
                    broken.append(f"{name} does not answer: {detail}")
        return not broken
    try:
        poll_until(settled, timeout, f"{', '.join(sorted(before))} to serve again",
                   on_wait=on_wait, clock=cluster.clock, interval=0.5)
    except TimedOut:
        pass
    return list(broken)


def _state(cluster: ClusterManager, name: str) -> str:
    try:
        app = cluster.serve.status().get(name)
    except DomainError as e:
        return str(e)
    if app is None:
        return "it is gone"
    states = sorted({r.get("state") for d in (app.get("deployments") or {}).values()
                     for r in d.get("replicas") or []})
    message = (app.get("message") or "").strip()[-300:]
    return f"{app.get('status')}, replicas {', '.join(states) or 'none'}" + (
        f" ({message})" if message else "")


def all_checks(cluster: ClusterManager, health_only: bool = False,
               ray_job: bool = False, reuse_job: bool = False, job_ahead=None) -> list[Check]:
    """``ray_job``: also run a Ray job on every node (``cluster.job_check``): a deploy's
    validation (``reuse_job``: one that passed on the same nodes minutes ago stands;
    ``job_ahead``: the wait for one it started ahead) and ``python -m validation`` do; the
    API's GET /cluster/health does not (a read starts nothing on the cluster)."""
    head = head_check(cluster)
    if not head.ok:
        return [head]
    checks = [head, *node_checks(cluster, cluster.config.workers.count)]
    if not health_only:
        job = None
        if ray_job:  # submitted first: its driver starts while the other checks run
            from cluster.job_check import submit  # (it builds on this module's Check)
            job = submit(cluster, reuse=reuse_job, after=job_ahead)
        checks += resource_checks(cluster) + serve_checks(cluster)
        if job is not None:
            checks.append(job())
        if cluster.config.monitoring.enabled:
            from cluster.monitoring import monitoring_check
            checks.append(monitoring_check(cluster))
    return checks

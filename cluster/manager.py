"""ClusterManager: the Ray cluster as a set of platform apps, used by checkpoints and the API.

It asks the live platform and the live cluster (never only its records): the head is the
app named ``<cluster>-head``, workers are ``<cluster>-worker-<n>``, and a Ray node belongs to
an app when it runs on the app's address.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cluster.config import Config, NodeResources
from cluster.dashboard import DashboardClient, DashboardError
from cluster.platform import (FAILED, RUNNING, STARTING, STOPPED, App, AppSpec, Platform,
                              PlatformError)
from cluster.ports import pick_port, pick_port_range, port_free
from cluster.serve import ServeManager
from store import Store

LAUNCHER = "cluster/launcher.py"
WORKER_PORTS_PER_NODE = 100


class ClusterError(Exception):
    """A cluster operation failed; the message says what and where to look."""


class NodeFailed(ClusterError):
    """A node's app ended instead of joining the cluster."""


class Conflict(ClusterError):
    """The request contradicts the cluster's state (e.g. removing the head)."""


@dataclass(frozen=True)
class Layout:
    """Where the head listens. Chosen once (free ports, defaults first) and recorded."""
    port: int
    dashboard_port: int
    serve_port: int
    client_port: int
    agent_port: int
    worker_ports: tuple[int, int]


class ClusterManager:
    def __init__(self, config: Config, store: Store, platform: Platform):
        self.config = config
        self.store = store
        self.platform = platform
        self._lock = threading.Lock()
        self._dashboard: DashboardClient | None = None
        self._node_ips: dict[str, str] = {}
        self.serve = ServeManager(self)
        # Where this cluster starts looking for free ports: another cluster starting at the
        # same moment (a test's, a user's) most likely looks elsewhere.
        self.port_offset = (zlib.crc32(str(config.state_dir).encode()) % 50) * 100

    # -- names and records ------------------------------------------------------------------
    @property
    def head_name(self) -> str:
        return f"{self.config.cluster_name}-head"

    @property
    def worker_prefix(self) -> str:
        return f"{self.config.cluster_name}-worker-"

    @property
    def temp_dir(self) -> str:
        # Ray's socket paths must stay under ~107 bytes, so not inside a deep state dir.
        return f"/tmp/raydeploy-{zlib.crc32(str(self.config.state_dir).encode()):08x}"

    def apps(self) -> list[App]:
        return [a for a in self.platform.list_apps()
                if a.name == self.head_name or a.name.startswith(self.worker_prefix)]

    def head_app(self, live_only: bool = True, apps: list[App] | None = None) -> App | None:
        for app in self.apps() if apps is None else apps:
            if app.name == self.head_name and (not live_only or app.status in (STARTING, RUNNING)):
                return app
        return None

    def worker_apps(self, live_only: bool = True, apps: list[App] | None = None) -> list[App]:
        apps = self.apps() if apps is None else apps
        return sorted((a for a in apps if a.name.startswith(self.worker_prefix)
                       and (not live_only or a.status in (STARTING, RUNNING))),
                      key=lambda a: int(a.name.rsplit("-", 1)[1]))

    def token(self) -> str | None:
        """The cluster's Ray auth token, created on first use (0600 in the state dir)."""
        if self.config.ray.auth != "token":
            return None
        path = self.config.state_dir / "ray_token"
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def auth_env(self) -> dict:
        token = self.token()
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {}

    # -- layout -------------------------------------------------------------------------------
    def layout(self) -> Layout | None:
        raw = self.store.kv_get("cluster.layout")
        return Layout(**{**raw, "worker_ports": tuple(raw["worker_ports"])}) if raw else None

    def ensure_layout(self) -> Layout:
        """The recorded layout while the head lives; else pick (configured or free) ports."""
        current = self.layout()
        if current is not None and self.head_app() is not None:
            return current
        ray = self.config.ray
        taken = self._ports_in_use()
        pick = lambda configured, default: configured or pick_port(default, taken, self.port_offset)  # noqa: E731
        layout = Layout(port=pick(ray.port, 6379), dashboard_port=pick(ray.dashboard_port, 8265),
                        serve_port=pick(ray.serve_port, 8000), client_port=pick(ray.client_port, 10001),
                        agent_port=pick_port(52365, taken, self.port_offset),
                        worker_ports=pick_port_range(WORKER_PORTS_PER_NODE, taken, self.port_offset))
        self.store.kv_set("cluster.layout", layout.__dict__)
        return layout

    def busy_configured_ports(self) -> list[str]:
        """Configured (non-auto) ports that something else already holds."""
        if self.head_app() is not None:
            return []
        ray = self.config.ray
        return [f"ray.{name}={port}" for name, port in
                (("port", ray.port), ("dashboard_port", ray.dashboard_port),
                 ("serve_port", ray.serve_port), ("client_port", ray.client_port))
                if port and not port_free(port)]

    def _ports_in_use(self) -> set[int]:
        taken: set[int] = set()
        for app in self.apps():
            if app.status in (STARTING, RUNNING):
                args = json.loads(app.spec.env.get("RAYDEPLOY_RAY_ARGS", "{}"))
                taken.update(v for k, v in args.items() if k.endswith("port") and isinstance(v, int))
                if "min_worker_port" in args:
                    taken.update(range(args["min_worker_port"], args["max_worker_port"] + 1))
        return taken

    # -- addresses ----------------------------------------------------------------------------------
    def node_ip(self, app: App) -> str | None:
        """The app's node address: known up front locally; on CML published by the node
        itself in the project files (read once, then remembered for that app id)."""
        if app.ip:
            return app.ip
        if app.id not in self._node_ips:
            raw = self.platform.read_file(f"nodes/{app.name}.json")
            if not raw:
                return None
            self._node_ips[app.id] = json.loads(raw)["ip"]
        return self._node_ips[app.id]

    def head_address(self) -> str | None:
        head, layout = self.head_app(), self.layout()
        if head is None or layout is None:
            return None
        ip = self.node_ip(head)
        return f"{ip}:{layout.port}" if ip else None

    def dashboard_url(self) -> str | None:
        head, layout = self.head_app(), self.layout()
        ip = self.node_ip(head) if head else None
        return f"http://{ip}:{layout.dashboard_port}" if ip and layout else None

    def dashboard(self) -> DashboardClient:
        url = self.dashboard_url()
        if url is None:
            raise ClusterError("the cluster has no running head")
        if self._dashboard is None or self._dashboard.url != url:
            self._dashboard = DashboardClient(url, self.token())
        return self._dashboard

    # -- head ---------------------------------------------------------------------------------------
    def start_head(self) -> App:
        layout = self.ensure_layout()
        head = self.config.head
        args = {"port": layout.port, "dashboard_port": layout.dashboard_port,
                "ray_client_server_port": layout.client_port,
                "dashboard_agent_listen_port": layout.agent_port,
                "min_worker_port": layout.worker_ports[0], "max_worker_port": layout.worker_ports[1],
                **self._resource_args(head, gpus=0)}
        if getattr(self.platform, "shares_host_network", False):
            with self._lock:
                taken = self._ports_in_use() | {layout.port, layout.dashboard_port,
                                                layout.serve_port, layout.client_port,
                                                layout.agent_port}
                taken.update(range(layout.worker_ports[0], layout.worker_ports[1] + 1))
                args.update(self._private_ports(taken))
        return self.platform.create_app(self._node_spec(self.head_name, "head", head, args))

    def wait_head(self, app: App, timeout: float = 120, on_wait=None) -> None:
        """Wait until the head app runs, GCS and dashboard answer and its node is ALIVE."""
        def ready():
            if not self._running(app):
                return False
            ip = self.node_ip(app)  # on CML only known once the node has published it
            return ip is not None and self.dashboard().healthy() and any(
                n["node_ip"] == ip and n["state"] == "ALIVE" for n in self.ray_nodes())
        self._wait(ready, timeout, f"head {app.name} to answer", on_wait)

    # -- workers ------------------------------------------------------------------------------------
    def add_workers(self, count: int, resources: NodeResources | None = None) -> list[App]:
        """Create ``count`` worker apps at once; returns them without waiting for Ray."""
        head_address = self.head_address()
        if head_address is None:
            raise ClusterError("cannot add workers: the cluster has no running head")
        resources = resources or self.config.workers
        with self._lock:  # names and ports are chosen together, then the starts run in parallel
            used = {int(a.name.rsplit("-", 1)[1]) for a in self.worker_apps(live_only=False)}
            taken = self._ports_in_use()
            specs = []
            index = 0
            for _ in range(count):
                index = next(i for i in range(index + 1, 10_000) if i not in used)
                args = {**self._resource_args(resources, resources.gpus)}
                if getattr(self.platform, "shares_host_network", False):
                    low, high = pick_port_range(WORKER_PORTS_PER_NODE, taken, self.port_offset)
                    args.update(dashboard_agent_listen_port=pick_port(0, taken, self.port_offset),
                                min_worker_port=low, max_worker_port=high,
                                **self._private_ports(taken))
                specs.append(self._node_spec(f"{self.worker_prefix}{index}", "worker", resources,
                                             args, RAY_HEAD_ADDRESS=head_address))
        if len(specs) <= 1:
            return [self.platform.create_app(s) for s in specs]
        with ThreadPoolExecutor(max_workers=min(len(specs), 16)) as pool:
            return list(pool.map(self.platform.create_app, specs))

    def wait_alive(self, apps: list[App], timeout: float = 180, on_wait=None) -> None:
        """Wait until every app is running on the platform (CML: APPLICATION_RUNNING) and its
        Ray node is ALIVE; a failed app ends the wait with its status and log."""
        def ready():
            if not all([self._running(app) for app in apps]):  # every app checked for failure
                return False
            alive = {n["node_ip"] for n in self.ray_nodes() if n["state"] == "ALIVE"}
            return all(self.node_ip(a) in alive for a in apps)
        self._wait(ready, timeout, f"{len(apps)} node(s) to become ALIVE", on_wait)

    def remove_worker(self, app_id: str, drain_seconds: int = 30) -> App:
        """Drain the worker's Ray node (work moves off it), then stop and delete its app."""
        app = next((a for a in self.apps() if a.id == app_id), None)
        if app is None:
            raise ClusterError(f"no node app with id {app_id}")
        if app.name == self.head_name:
            raise Conflict("the head node cannot be removed (tear the cluster down instead)")
        node = self._ray_node_for(app)
        if node is not None and node["state"] == "ALIVE":
            self._drain(node, drain_seconds)
        self.platform.delete_app(app.id)
        self.platform.delete_file(f"nodes/{app.name}.json")
        return app

    def _drain(self, node: dict, drain_seconds: int) -> None:
        ray = Path(sys.executable).with_name("ray")
        command = [str(ray) if ray.exists() else "ray", "drain-node",
                   f"--address={self.head_address()}", f"--node-id={node['node_id']}",
                   "--reason=DRAIN_NODE_REASON_PREEMPTION",
                   "--reason-message=removed by raydeploy",
                   f"--deadline-remaining-seconds={drain_seconds}"]
        result = subprocess.run(command, env={**os.environ, **self.auth_env()}, capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:  # e.g. the node died meanwhile: stopping it is still right
            return
        deadline = time.monotonic() + drain_seconds + 5
        while time.monotonic() < deadline:
            if all(n["state"] != "ALIVE" for n in self.ray_nodes()
                   if n["node_id"] == node["node_id"]):
                return
            time.sleep(0.25)

    # -- what runs --------------------------------------------------------------------------------
    def ray_nodes(self, client: DashboardClient | None = None) -> list[dict]:
        """Ray's node rows; per address the ALIVE row wins over rows of earlier, dead nodes."""
        rows = sorted((client or self.dashboard()).nodes(), key=lambda n: n["state"] == "ALIVE")
        return list({n["node_ip"]: n for n in rows}.values())

    def _ray_node_for(self, app: App, nodes: list[dict] | None = None) -> dict | None:
        ip = self.node_ip(app)
        try:
            nodes = self.ray_nodes() if nodes is None else nodes
        except (ClusterError, DashboardError):
            return None
        return next((n for n in nodes if n["node_ip"] == ip), None)

    def nodes(self, with_usage: bool = False) -> list[dict]:
        """Platform apps and Ray nodes merged; an app whose Ray node is missing is shown too."""
        apps = self.apps()  # one platform listing (an API call on CML) for the whole answer
        head = self.head_app(apps=apps)
        ray_nodes, usage = [], {}
        try:
            client = self.dashboard()
            ray_nodes = self.ray_nodes(client)
            if with_usage and ray_nodes:
                usage = client.usage_by_node()
        except (ClusterError, DashboardError):
            pass  # no head or no dashboard: the platform apps are still shown
        out, seen = [], set()
        for app in ([head] if head else []) + self.worker_apps(apps=apps):
            node = self._ray_node_for(app, ray_nodes)
            if node:
                seen.add(node["node_id"])
            out.append(_node_row(node, app, "head" if app.name == self.head_name else "worker", usage))
        for node in ray_nodes:
            if node["node_id"] not in seen and node["state"] == "ALIVE":
                out.append(_node_row(node, None, "head" if node["is_head_node"] else "worker", usage))
        return out

    def capacity(self, nodes: list[dict] | None = None) -> dict:
        """Totals over ALIVE nodes, in use from Ray's load report; memory in GB."""
        alive = [n for n in (self.nodes(with_usage=True) if nodes is None else nodes) if n["alive"]]
        total = lambda key: sum(n["resources"].get(key, 0) for n in alive)  # noqa: E731
        used = lambda key: sum(n["resources_used"].get(key, 0) for n in alive)  # noqa: E731
        cpus, gpus, memory = total("CPU"), total("GPU"), total("memory")
        return {"total_cpus": cpus, "available_cpus": round(cpus - used("CPU"), 3),
                "total_gpus": gpus, "available_gpus": round(gpus - used("GPU"), 3),
                "total_memory": round(memory / 1024 ** 3, 2),
                "available_memory": round((memory - used("memory")) / 1024 ** 3, 2),
                "utilization_percent": round(100 * used("CPU") / cpus, 1) if cpus else 0.0}

    # -- teardown -----------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Stop every node app (workers first, then the head); returns the app names."""
        apps = self.worker_apps(live_only=False) + [a for a in self.apps() if a.name == self.head_name]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda a: self.platform.delete_app(a.id), apps))
        for app in apps:
            self.platform.delete_file(f"nodes/{app.name}.json")
        self.platform.delete_file("head_address")
        self.store.kv_delete("cluster.layout")
        self.store.kv_delete("serve.managed")
        if self.platform.name == "local":
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        self._dashboard = None
        return [a.name for a in apps]

    # -- helpers ------------------------------------------------------------------------------------
    def _node_spec(self, name: str, role: str, resources: NodeResources, ray_args: dict,
                   **env) -> AppSpec:
        # One temp dir per node: nodes starting at once in a shared one race for socket names.
        node_dir = "head" if role == "head" else f"w{name.rsplit('-', 1)[1]}"
        ray_args = {**ray_args, "temp_dir": f"{self.temp_dir}/{node_dir}"}
        return AppSpec(name=name, script=LAUNCHER, cpu=resources.cpu, memory=resources.memory,
                       gpus=0 if role == "head" else resources.gpus,
                       description=f"Ray {role} of {self.config.cluster_name}",
                       env={"RAYDEPLOY_ROLE": role, "RAYDEPLOY_APP_NAME": name,
                            "RAYDEPLOY_RAY_ARGS": json.dumps(ray_args, sort_keys=True),
                            "RAY_USAGE_STATS_ENABLED": "0", **self.auth_env(), **env})

    def _private_ports(self, taken: set[int]) -> dict:
        """Every other port a node binds, chosen here: nodes starting at the same moment on
        one machine otherwise pick the same random port (seen: raylet 'Address already in use')."""
        return {name: pick_port(0, taken, self.port_offset) for name in (
            "node_manager_port", "object_manager_port", "metrics_export_port",
            "runtime_env_agent_port", "dashboard_agent_grpc_port")}

    @staticmethod
    def _resource_args(resources: NodeResources, gpus: int) -> dict:
        return {"num_cpus": _number(resources.cpu), "num_gpus": gpus,
                "memory": resources.memory_bytes, "object_store_memory": resources.object_store_bytes}

    def _app_status(self, app: App) -> str:
        try:
            return self.platform.get_app(app.id).status
        except PlatformError as e:
            return f"unknown ({e})"

    def _running(self, app: App) -> bool:
        """Whether the platform reports the app running; raises NodeFailed if it ended."""
        status = self._app_status(app)
        if status in (FAILED, STOPPED) or status.startswith("unknown"):
            tail = ""
            if hasattr(self.platform, "app_log"):
                try:
                    tail = "\n" + "\n".join(self.platform.app_log(app.name).read_text()
                                            .splitlines()[-15:])
                except OSError:
                    pass
            raise NodeFailed(f"node app {app.name} is {status} on {self.platform.name}{tail}")
        return status == RUNNING

    @staticmethod
    def _wait(predicate, timeout: float, what: str, on_wait=None, interval: float = 0.1) -> None:
        start = time.monotonic()
        while True:
            try:
                if predicate():
                    return
            except DashboardError:
                pass  # not answering yet
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
            if on_wait:
                on_wait(f"waiting for {what} ({elapsed:.0f}s)")
            time.sleep(interval)


def _number(value: float):
    return int(value) if float(value).is_integer() else value


def _node_row(node: dict | None, app: App | None, node_type: str, usage: dict | None = None) -> dict:
    return {"node_id": node["node_id"] if node else None,
            "node_name": (node.get("node_name") or node["node_ip"]) if node else (app.name if app else None),
            "node_ip": node["node_ip"] if node else (app.ip if app else None),
            "node_type": node_type,
            "platform_app_id": app.id if app else None,
            "platform_app_name": app.name if app else None,
            "platform_status": app.status if app else None,
            "alive": bool(node and node["state"] == "ALIVE"),
            "resources": dict(node["resources_total"]) if node else {},
            "resources_used": dict((usage or {}).get(node["node_id"], {})) if node else {}}

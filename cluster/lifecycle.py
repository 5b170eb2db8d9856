"""Node lifecycle: start the head, add workers (all at once), wait until Ray sees them,
drain and remove a worker, tear the cluster down. Every wait is ``poll_until``."""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from cluster.config import NodeResources
from cluster.dashboard import DashboardError
from cluster.inventory import NodeInventory, NoHead
from cluster.launcher import RAY_COMMAND
from cluster.layout import PortLayout
from cluster.platforms.base import Platform
from cluster.platforms.records import FAILED, RUNNING, STOPPED, App, AppSpec, Ran
from core import crashpoints
from core.errors import Conflict, DomainError, NotFound
from core.timing import SYSTEM_CLOCK, Clock, TimedOut, poll_until

LAUNCHER = "cluster/launcher.py"
TEMP_KEY = "cluster.temp_dir"
RAY_TEMP_DIR = "/tmp/ray"  # Ray's own default (--temp-dir)


def _private_dir(path: str) -> bool:
    """A real directory (not a symlink) of ours that nobody else may write into."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


class NodeFailed(Conflict):
    """A node's app ended instead of joining the cluster."""


class NodeDrainFailed(Conflict):
    """Ray would not drain a node: it is not stopped (its work would be lost unannounced)."""


class NodeLifecycle:
    def __init__(self, config, store, platform: Platform, inventory: NodeInventory,
                 layout: PortLayout, serve, auth_env, clock: Clock = SYSTEM_CLOCK):
        self.config = config
        self.store = store
        self.serve = serve  # ServeManager: where replicas run while a node drains
        self.platform = platform
        self.inventory = inventory
        self.layout = layout
        self.auth_env = auth_env  # () -> {RAY_AUTH_MODE, RAY_AUTH_TOKEN} or {}
        self.clock = clock
        self._lock = threading.Lock()  # names and ports are chosen by one thread at a time

    @property
    def temp_dir(self) -> str:
        """The cluster's Ray temp dir on this machine (one subdir per node). Made by mkdtemp
        (0700, a name nobody can guess and plant beforehand), recorded, and used while it is
        still ours. Short, under /tmp: Ray's socket paths must stay under ~107 bytes."""
        recorded = self.store.kv.get(TEMP_KEY)
        if recorded and _private_dir(recorded):
            return recorded
        prefix = f"rd-{zlib.crc32(str(self.config.state_dir).encode()):08x}-"
        path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self.store.kv.set(TEMP_KEY, path)
        return path

    @property
    def head_temp_dir(self) -> str:
        """The head's Ray temp dir on its host (Ray writes its list of scrape targets there):
        a subdir of ``temp_dir`` on one host network, else Ray's default on its own host."""
        return f"{self.temp_dir}/head" if self.platform.shares_host_network else RAY_TEMP_DIR

    # -- head -----------------------------------------------------------------------------------
    def start_head(self) -> App:
        apps = self.inventory.apps()
        layout = self.layout.ensure(self.inventory.head_app(apps=apps) is not None, apps)
        head = self.config.head
        args = {"port": layout.port, "dashboard_port": layout.dashboard_port,
                "ray_client_server_port": layout.client_port,
                "dashboard_agent_listen_port": layout.agent_port,
                "min_worker_port": layout.worker_ports[0], "max_worker_port": layout.worker_ports[1],
                **_resource_args(head, gpus=0)}
        if self.platform.shares_host_network:
            with self._lock:
                taken = self.layout.ports_in_use(apps) | layout.head_ports
                args.update(self.layout.private_ports(taken))
        return self.platform.create_app(self._node_spec("head", None, head, args,
                                                        **layout.head_env()))

    def wait_head(self, app: App, timeout: float = 120, on_wait=None) -> None:
        """Wait until the head app runs, GCS and dashboard answer and its node is ALIVE."""
        def ready():
            if not self._running(app):
                return False
            ip = self.inventory.node_ip(app)  # on CML only known once the node published it
            return ip is not None and self.inventory.dashboard().healthy() and ip in \
                self.inventory.alive_ips()
        poll_until(ready, timeout, f"head {app.name} to answer", on_wait=on_wait,
                   clock=self.clock, retry_on=(DashboardError, NoHead))

    # -- workers --------------------------------------------------------------------------------
    def add_workers(self, count: int, resources: NodeResources | None = None,
                    added_by: str | None = None) -> list[App]:
        """Create ``count`` worker apps at once; returns them without waiting for Ray.
        ``added_by`` (a run id) goes in their description: a resumed run finds its own."""
        head_address = self.inventory.head_address()
        if head_address is None:
            raise NoHead("cannot add workers")
        resources = resources or self.config.workers
        with self._lock:  # names and ports are chosen together, then the starts run in parallel
            apps = self.inventory.apps()
            used = {self.inventory.worker_index(a)
                    for a in self.inventory.worker_apps(live_only=False, apps=apps)}
            # the head's ports too: its Serve proxy and Prometheus ports are bound only later,
            # and a worker given one of them first makes the proxy fail to bind (seen)
            layout = self.layout.current()
            taken = self.layout.ports_in_use(apps) | (layout.head_ports if layout else set())
            specs, index = [], 0
            for _ in range(count):
                index = next(i for i in range(index + 1, 10_000) if i not in used)
                args = _resource_args(resources, resources.gpus)
                if self.platform.shares_host_network:
                    args.update(self.layout.worker_node_ports(taken))
                spec = self._node_spec("worker", index, resources, args,
                                       RAY_HEAD_ADDRESS=head_address)
                if added_by:
                    spec = replace(spec, description=f"{spec.description} {added_by_note(added_by)}")
                specs.append(spec)
        return self.platform.create_apps(specs)

    def wait_alive(self, apps: list[App], timeout: float = 180, on_wait=None) -> None:
        """Wait until every app is running on the platform (CML: APPLICATION_RUNNING) and its
        Ray node is ALIVE; a failed app ends the wait with its status and log. Each try asks
        the platform once (one listing, not one call per app)."""
        def ready():
            if not apps_running(self.platform, apps):
                return False
            alive = self.inventory.alive_ips()
            if len(alive) < len(apps):  # not all joined yet: no need to look addresses up
                return False
            ips = self.inventory.node_ips(apps)
            return all(ips[a.id] in alive for a in apps)
        poll_until(ready, timeout, f"{len(apps)} node(s) to become ALIVE", on_wait=on_wait,
                   clock=self.clock, retry_on=(DashboardError, NoHead))

    def removable_worker(self, app_id: str) -> App:
        """The worker app ``app_id``, which may be removed: NotFound when there is none,
        Conflict for the head (the one place these rules are checked)."""
        app = next((a for a in self.inventory.apps() if a.id == app_id), None)
        if app is None:
            raise NotFound(f"no node app with id {app_id}")
        if app.spec.role == "head":
            raise Conflict("the head node cannot be removed (tear the cluster down instead)")
        return app

    def remove_worker(self, app_id: str, drain_seconds: float | None = None,
                      on_wait=None) -> App:
        """Drain the worker's Ray node, wait until Serve runs the replicas it had elsewhere
        (up to ``workers.drain_timeout_seconds``), then stop and delete its app."""
        drain_seconds = drain_seconds or self.config.workers.drain_timeout_seconds
        app = self.removable_worker(app_id)
        node = self.inventory.ray_node_for(app)
        if node is not None and node["state"] == "ALIVE":
            self._drain(app, node, drain_seconds, on_wait)
        self.platform.delete_app(app.id)
        self.platform.delete_file(f"nodes/{app.name}.json")
        return app

    def _drain(self, app: App, node: dict, drain_seconds: float, on_wait=None) -> None:
        hosted = self._deployments_on(node["node_ip"])
        command = ["python", *RAY_COMMAND, "drain-node",
                   f"--address={self.inventory.head_address()}", f"--node-id={node['node_id']}",
                   "--reason=DRAIN_NODE_REASON_PREEMPTION",
                   "--reason-message=removed by raydeploy",
                   f"--deadline-remaining-seconds={int(drain_seconds)}"]
        try:  # where the node runs, with its Ray (the platform's seam)
            result = self.platform.run_on_node(app, command, self.auth_env(), timeout=60)
        except DomainError as e:  # its machine not reached: as a drain that failed
            result = Ran(None, str(e))
        crashpoints.wrote()
        if result.code != 0:
            still = self.inventory.ray_node_for_ip(node["node_ip"])
            if still is not None and still["state"] == "ALIVE":  # never stopped undrained
                how = "timed out" if result.code is None else f"exit {result.code}"
                reason = result.output.strip().splitlines()[-1:] or ["no output"]
                raise NodeDrainFailed(f"node {node['node_ip']} could not be drained (ray "
                                      f"drain-node {how}: {reason[0][:300]}): it keeps running")
            return  # it left by itself meanwhile
        if not hosted:  # nothing of Serve's to move
            return
        what = f"Serve to run {', '.join(sorted(hosted))} off {node['node_ip']}"
        try:
            poll_until(lambda: self._replaced_elsewhere(hosted, node["node_ip"]), drain_seconds,
                       what, on_wait=on_wait, clock=self.clock, interval=0.25,
                       retry_on=(DashboardError,))
        except TimedOut:
            pass  # the deadline passed: the node is stopped anyway (verify says what broke)

    def _deployments_on(self, ip: str) -> set[str]:
        """The Serve deployments ("app/deployment") with a replica on the node at ``ip``."""
        try:
            status = self.serve.status()
        except DomainError:
            return set()
        return {f"{app}/{dep}" for app, detail in status.items()
                for dep, d in (detail.get("deployments") or {}).items()
                if any(r.get("node_ip") == ip for r in d.get("replicas") or [])}

    def _replaced_elsewhere(self, hosted: set[str], ip: str) -> bool:
        """Every deployment that had a replica on ``ip`` runs its target number elsewhere."""
        status = self.serve.status()
        for key in hosted:
            app, dep = key.split("/", 1)
            detail = ((status.get(app) or {}).get("deployments") or {}).get(dep)
            if detail is None:  # the app went meanwhile: nothing to wait for
                continue
            running = [r for r in detail.get("replicas") or []
                       if r.get("state") == "RUNNING" and r.get("node_ip") != ip]
            if len(running) < (detail.get("target_num_replicas") or 1):
                return False
        return True

    # -- teardown ---------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Stop every app of the cluster (workers, then the head and its Prometheus); returns
        the app names."""
        apps = self.inventory.owned_apps()
        ordered = self.inventory.worker_apps(live_only=False, apps=apps) + [
            a for a in apps if a.spec.role in ("head", "prometheus")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda a: self.platform.delete_app(a.id), ordered))
        for app in ordered:
            self.platform.delete_file(f"nodes/{app.name}.json")
        self.platform.delete_file("head_address")
        self.layout.forget()
        recorded = self.store.kv.get(TEMP_KEY)
        if self.platform.on_this_machine and recorded and _private_dir(recorded):
            shutil.rmtree(recorded, ignore_errors=True)
        self.store.kv.delete(TEMP_KEY)
        self.inventory.forget_dashboard()
        self.inventory.forget_node_ips()
        return [a.name for a in ordered]

    # -- helpers ----------------------------------------------------------------------------------
    def _node_spec(self, role: str, index: int | None, resources: NodeResources, ray_args: dict,
                   **env) -> AppSpec:
        """The spec of the head (``index`` None) or of worker ``index``."""
        inventory = self.inventory
        name = inventory.head_name if role == "head" else inventory.worker_name(index)
        if self.platform.shares_host_network:
            # One temp dir per node: nodes starting at once in a shared one race for socket
            # names. (A node with a host of its own keeps Ray's default, in its own /tmp.)
            ray_args = {**ray_args, "temp_dir": self.head_temp_dir if role == "head"
                        else f"{self.temp_dir}/w{index}"}
        return AppSpec(name=name, script=LAUNCHER, cpu=resources.cpu, memory=resources.memory,
                       gpus=0 if role == "head" else resources.gpus,
                       tags=inventory.tags(role, index),
                       description=f"Ray {role} of {self.config.cluster_name}",
                       env={"RAYDEPLOY_ROLE": role, "RAYDEPLOY_APP_NAME": name,
                            "RAYDEPLOY_RAY_ARGS": json.dumps(ray_args, sort_keys=True),
                            "RAY_USAGE_STATS_ENABLED": "0", **self.platform.node_environment(),
                            **self.auth_env(), **env})

    def _running(self, app: App) -> bool:
        """Whether the platform reports the app running; raises NodeFailed if it ended."""
        try:
            status = self.platform.get_app(app.id).status
        except DomainError as e:
            status = f"unknown ({e})"
        return _is_running(self.platform, app, status)


def apps_running(platform: Platform, apps: list[App]) -> bool:
    """Whether every one of ``apps`` runs, from one listing of the platform's apps; raises
    NodeFailed for the first that ended or went."""
    statuses = {a.id: a.status for a in platform.list_apps()}
    return all([_is_running(platform, app, statuses.get(app.id, "unknown (gone)"))
                for app in apps])  # a list: every app is checked for failure


def _is_running(platform: Platform, app: App, status: str) -> bool:
    """``status == RUNNING``; raises NodeFailed with the app's log tail if it ended."""
    if status in (FAILED, STOPPED) or status.startswith("unknown"):
        tail = platform.app_log_tail(app)
        raise NodeFailed(f"node app {app.name} is {status} on {platform.name}"
                         + (f"\n{tail}" if tail else ""))
    return status == RUNNING


def _number(value: float):
    return int(value) if float(value).is_integer() else value


def _resource_args(resources: NodeResources, gpus: int) -> dict:
    return {"num_cpus": _number(resources.cpu), "num_gpus": gpus,
            "memory": resources.memory_bytes, "object_store_memory": resources.object_store_bytes}


def added_by_note(run_id: str) -> str:
    return f"(added by {run_id})"

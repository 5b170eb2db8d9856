"""Serve applications through the dashboard's Serve REST API, without its traps.

The PUT is declarative (every app not listed is deleted) and answers 200 before anything is
deployed. So every write here reads the running configs (each app's ``deployed_app_config``),
merges one change into it, checks it itself, and PUTs under a file lock, so two writers (CLI
and API server) never drop each other's apps. RUNNING is not "answering": ``probe`` sends a
real request through the proxy.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json

import requests

from cluster.dashboard import DashboardError
from core.errors import Conflict, DomainError
from core.timing import SYSTEM_CLOCK, Clock, TimedOut, poll_until

APP_KEYS = ("import_path", "route_prefix", "args", "runtime_env", "deployments")
# The management API's Serve deployment (api_server/serve_app.py builds it under this name).
MANAGEMENT_IMPORT_PATH = "api_server.serve_app:build"
MANAGEMENT_DEPLOYMENT = "ManagementAPI"
FAILED_STATES = ("DEPLOY_FAILED", "UNHEALTHY")


def enforced_settings(config) -> dict:
    """The settings the management API enforces (who may do what, which approvals count,
    what may be deployed, which requests it answers), without secrets: names, rules and
    limits; notification targets by name and type only (their URLs may be secrets)."""
    approvals, api, notes = config.approvals, config.api, config.notifications
    return {
        "serve_policy": {"allowed_import_prefixes": list(config.serve.allowed_import_prefixes),
                         "allowed_runtime_env_keys": list(config.serve.allowed_runtime_env_keys)},
        "approvals": {"ttl_seconds": approvals.ttl_seconds, "required": list(approvals.required),
                      "wait_timeout_seconds": approvals.wait_timeout_seconds,
                      "forbid_self_approval": approvals.forbid_self_approval,
                      "operations": dict(approvals.operations), "file_dir": approvals.file_dir,
                      "policy": {name: p.to_dict() for name, p in sorted(approvals.policy.items())}},
        "api": {"tokens_file": api.tokens_file, "cors_origins": list(api.cors_origins),
                "allowed_hosts": list(api.allowed_hosts), "max_body_bytes": api.max_body_bytes,
                "sse_per_principal": api.sse_per_principal,
                "sse_max_seconds": api.sse_max_seconds, "metrics_public": api.metrics_public},
        "notifications": {"targets": [{"name": t.name, "type": t.type, "events": list(t.events)}
                                      for t in notes.targets],
                          "public_url": notes.public_url,
                          "expiring_lead_seconds": notes.expiring_lead_seconds}}


def settings_digest(settings: dict) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def management_app_config(config, listen_host: str | None, principals: list[dict],
                          control_plane_url: str | None = None) -> dict | None:
    """The management API's Serve app entry (None when serve.management_api.enabled is off).
    Where a control plane runs the cluster (``control_plane_url``), the replica forwards
    every request to it and holds nothing else: no path of the control plane's host, no
    principal. Else (embedded) it reads the same config file and state dir as the CLI and
    gets the API tokens as digests, and the settings it enforces with their digest, in the
    app's ``args`` (see api_server/serve_app.py): a change of either changes the app, so a
    deploy plans it (the replica reads its config when it starts, and would keep enforcing
    the old one)."""
    mgmt = config.serve.management_api
    if not mgmt.enabled:
        return None
    options = {"num_cpus": mgmt.num_cpus}
    if mgmt.memory:
        options["memory"] = int(mgmt.memory * 1024 ** 3)
    if control_plane_url:
        args = {"forward_to": control_plane_url}
    else:
        settings = enforced_settings(config)
        args = {"config": str(config.source), "state_dir": str(config.state_dir),
                "base_dir": str(config.base_dir), "listen_host": listen_host,
                "principals": principals, "enforces": settings,
                "settings_digest": settings_digest(settings)}
    return {"name": mgmt.name, "import_path": MANAGEMENT_IMPORT_PATH,
            "route_prefix": mgmt.route_prefix, "args": args,
            "deployments": [{"name": MANAGEMENT_DEPLOYMENT, "num_replicas": 1,
                             "ray_actor_options": options}]}


def health_path(route_prefix: str) -> str:
    return route_prefix.rstrip("/") + "/health"


def app_paths(config) -> list[tuple[str, str]]:
    """(name, path that must answer through the proxy) of every app the config keeps running."""
    paths = [(a.name, a.health_path or a.route_prefix) for a in config.serve.applications]
    mgmt = config.serve.management_api
    if mgmt.enabled:
        paths.append((mgmt.name, health_path(mgmt.route_prefix)))
    return paths


class ServeError(Conflict):
    """A Serve application failed to deploy, or a change to the apps cannot be made."""


class RoutePrefixTaken(ServeError):
    pass


def same_app(live: dict, desired: dict) -> bool:
    """Whether a running app's config already is ``desired`` (for the keys we manage)."""
    return all((live.get(k) or None) == (desired.get(k) or None) for k in APP_KEYS)


class ServeManager:
    def __init__(self, config, inventory, clock: Clock = SYSTEM_CLOCK):
        self.config = config
        self.inventory = inventory
        self.clock = clock

    @property
    def proxy_url(self) -> str | None:
        return self.inventory.proxy_url()

    def proxy_host(self) -> str | None:
        head = self.inventory.head_app()
        return self.inventory.node_ip(head) if head else None

    def desired_apps(self, principals: list[dict], control_plane_url: str | None = None
                     ) -> list[tuple[dict, str]]:
        """Every app serve_deploy keeps running: (Serve config entry, path that must answer)."""
        apps = [(a.serve_config(), a.health_path or a.route_prefix) for a in self.config.serve.applications]
        mgmt = management_app_config(self.config, self.proxy_host(), principals,
                                     control_plane_url)
        if mgmt is not None:
            apps.append((mgmt, health_path(mgmt["route_prefix"])))
        return apps

    def management_api_url(self) -> str | None:
        """Where the cluster's own management API answers (through the Serve proxy)."""
        mgmt = self.config.serve.management_api
        proxy = self.proxy_url
        return proxy + mgmt.route_prefix.rstrip("/") if mgmt.enabled and proxy else None

    def status(self) -> dict:
        """``{name: {status, message, route_prefix, deployments, ...}}`` of running apps."""
        return self.inventory.dashboard().serve_applications().get("applications") or {}

    def deployed_configs(self, status: dict | None = None) -> dict[str, dict]:
        """The config each app was deployed with through the REST API, by name. (Apps started
        imperatively, e.g. ``serve.run``, have none and cannot be kept by a declarative PUT.)"""
        status = self.status() if status is None else status
        return {name: app["deployed_app_config"] for name, app in status.items()
                if app.get("deployed_app_config")}

    @contextlib.contextmanager
    def _writer_lock(self):
        path = self.config.state_dir / "serve.lock"
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def apply(self, upserts: list[dict] = (), removes: list[str] = ()) -> dict[str, dict]:
        """Merge ``upserts`` into the running apps, drop ``removes``, and PUT the result."""
        with self._writer_lock():
            apps = self.deployed_configs()
            for name in removes:
                apps.pop(name, None)
            for app in upserts:
                apps[app["name"]] = {**apps.get(app["name"], {}), **app}
            prefixes: dict[str, str] = {}
            for app in apps.values():
                owner = prefixes.setdefault(app.get("route_prefix") or "/", app["name"])
                if owner != app["name"]:
                    raise RoutePrefixTaken(f"route prefix {app['route_prefix']!r} of {app['name']!r}"
                                           f" is already used by application {owner!r}")
            inventory = self.inventory
            # nodes on one host: the head's own address; a head with a network of its own
            # (a pod) listens on all of it, its platform's URL (127.0.0.1:$CDSW_APP_PORT) too
            host = (inventory.node_ip(inventory.head_app())
                    if inventory.platform.shares_host_network else "0.0.0.0")
            inventory.dashboard().put_serve({
                "proxy_location": "HeadOnly",
                "http_options": {"host": host, "port": inventory.serve_port()},
                "applications": list(apps.values())})
            return apps

    def wait_running(self, names: list[str], timeout: float = 180, on_wait=None) -> None:
        def running():
            try:
                status = self.status()
            except DashboardError:
                return False
            failed = {n: status[n].get("message", "") for n in names
                      if status.get(n, {}).get("status") in FAILED_STATES}
            if failed:
                raise ServeError("; ".join(f"application {n} failed: {m.strip()[-800:]}"
                                           for n, m in failed.items()))
            return all(status.get(n, {}).get("status") == "RUNNING" for n in names)
        poll_until(running, timeout, f"Serve applications {', '.join(names)} to be RUNNING",
                   on_wait=on_wait, clock=self.clock, interval=0.2)

    @staticmethod
    def ingress_of(app: dict) -> str | None:
        """The ingress deployment's name, as Ray reports it for a running app."""
        topology = app.get("deployment_topology") or {}
        if topology.get("ingress_deployment"):
            return topology["ingress_deployment"]
        deployments = list(app.get("deployments") or {})
        return deployments[0] if len(deployments) == 1 else None

    def wait_ingress(self, name: str, timeout: float = 60, on_wait=None) -> str:
        """The ingress deployment's name of app ``name``, once Ray has built the app on the
        cluster (only the code knows it, and the code is imported there, never here)."""
        def known():
            app = self.status().get(name) or {}
            if app.get("status") in FAILED_STATES:
                raise ServeError(f"application {name} failed: "
                                 f"{(app.get('message') or '').strip()[-800:]}")
            return self.ingress_of(app)
        return poll_until(known, timeout, f"Serve to report the deployments of {name}",
                          on_wait=on_wait, clock=self.clock, interval=0.2,
                          retry_on=(DashboardError,))

    def probe(self, path: str, timeout: float = 3.0) -> tuple[bool, str]:
        """One HTTP GET through the Serve proxy: (answered, detail)."""
        url = (self.proxy_url or "") + path
        try:
            with requests.Session() as s:
                s.trust_env = False
                response = s.get(url, timeout=timeout)
        except requests.RequestException as e:
            return False, f"GET {url}: {type(e).__name__}"
        ok = response.status_code < 500 and response.status_code != 404
        return ok, f"GET {url}: HTTP {response.status_code}"

    def wait_answering(self, paths: list[str], timeout: float = 120, on_wait=None) -> None:
        pending = list(paths)

        def answered():
            pending[:] = [p for p in pending if not self.probe(p)[0]]
            return not pending
        try:
            poll_until(answered, timeout, f"{', '.join(paths)} to answer through the proxy",
                       on_wait=on_wait, clock=self.clock, interval=0.2)
        except TimedOut as e:  # say what the proxy answered, and what Serve says of its proxies
            raise TimedOut(f"{e}: " + "; ".join(self.probe(p)[1] for p in pending)
                           + self._proxy_states()) from None

    def _proxy_states(self) -> str:
        try:
            proxies = self.inventory.dashboard().serve_applications().get("proxies") or {}
        except DomainError:
            return ""
        return f" (Serve's proxies: {proxies})" if proxies else " (Serve reports no proxy)"

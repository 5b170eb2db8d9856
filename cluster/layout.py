"""Where the cluster's processes listen: the head's ports, chosen once and recorded, and the
private ports of every node when nodes share one host network.

Several clusters may share a machine (a user's, a test's): every port is checked free and
each cluster starts looking at its own offset, so two clusters starting at once rarely
reach for the same port."""
from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass

from cluster.platforms.records import LIVE, App
from cluster.ports import pick_port, pick_port_range, port_free

LAYOUT_KEY = "cluster.layout"
HEAD_PORT_ENV = ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT", "RAYDEPLOY_PROMETHEUS_PORT")
WORKER_PORTS_PER_NODE = 100
# every other port a node binds: chosen here, since nodes starting at the same moment on one
# machine otherwise pick the same random port (seen: raylet "Address already in use")
PRIVATE_PORTS = ("node_manager_port", "object_manager_port", "metrics_export_port",
                 "runtime_env_agent_port", "dashboard_agent_grpc_port")


@dataclass(frozen=True)
class Layout:
    """Where the head listens."""
    port: int
    dashboard_port: int
    serve_port: int
    client_port: int
    agent_port: int
    worker_ports: tuple[int, int]
    # the head's autoscaler and dashboard metrics servers (Ray's default, 44217/44227 on every
    # interface, collides between clusters), and where this cluster's Prometheus listens
    autoscaler_metrics_port: int | None = None
    dashboard_metrics_port: int | None = None
    prometheus_port: int | None = None

    @property
    def head_ports(self) -> set[int]:
        extra = {self.autoscaler_metrics_port, self.dashboard_metrics_port, self.prometheus_port}
        return {self.port, self.dashboard_port, self.serve_port, self.client_port,
                self.agent_port, *range(self.worker_ports[0], self.worker_ports[1] + 1),
                *(p for p in extra if p)}

    def head_env(self) -> dict:
        """Environment of the head's Ray processes for these ports (the launcher turns
        RAYDEPLOY_PROMETHEUS_PORT into RAY_PROMETHEUS_HOST on the head's own address)."""
        env = {"AUTOSCALER_METRIC_PORT": self.autoscaler_metrics_port,
               "DASHBOARD_METRIC_PORT": self.dashboard_metrics_port,
               "RAYDEPLOY_PROMETHEUS_PORT": self.prometheus_port}
        return {k: str(v) for k, v in env.items() if v}


def ray_args(app: App) -> dict:
    """The ``ray start`` options an app was created with."""
    return json.loads(app.spec.env.get("RAYDEPLOY_RAY_ARGS", "{}"))


PROMETHEUS_PORT = 9090  # Prometheus's own default: the cluster's, unless monitoring.port
# Ray's own defaults: what nodes with a network each (pods, hosts) listen on
RAY_DEFAULTS = {"port": 6379, "dashboard_port": 8265, "serve_port": 8000, "client_port": 10001,
                "agent_port": 52365, "worker_ports": (10002, 19999)}


class PortLayout:
    def __init__(self, config, store, shared_host: bool = True,
                 prometheus_beside_head: bool | None = None):
        """``shared_host``: every node listens on one host, so each port is chosen free and
        apart; else every node has its own network and Ray's defaults serve all.
        ``prometheus_beside_head`` (default: ``shared_host``): the cluster's Prometheus can
        run on the head's host, so the head is given its port (whether or not monitoring is
        on yet: turning it on later needs no new head)."""
        self.config = config
        self.store = store
        self.shared_host = shared_host
        self.prometheus_beside_head = shared_host if prometheus_beside_head is None \
            else prometheus_beside_head
        self.offset = (zlib.crc32(str(config.state_dir).encode()) % 50) * 100

    def current(self) -> Layout | None:
        raw = self.store.kv.get(LAYOUT_KEY)
        return Layout(**{**raw, "worker_ports": tuple(raw["worker_ports"])}) if raw else None

    def ensure(self, head_alive: bool, apps: list[App]) -> Layout:
        """The recorded layout while the head lives; else pick (configured or free) ports."""
        current = self.current()
        if current is not None and head_alive:
            return current
        ray = self.config.ray
        if not self.shared_host:  # nothing here to check them against: the nodes' own
            layout = Layout(port=ray.port or RAY_DEFAULTS["port"],
                            dashboard_port=ray.dashboard_port or RAY_DEFAULTS["dashboard_port"],
                            serve_port=ray.serve_port or RAY_DEFAULTS["serve_port"],
                            client_port=ray.client_port or RAY_DEFAULTS["client_port"],
                            agent_port=RAY_DEFAULTS["agent_port"],
                            worker_ports=RAY_DEFAULTS["worker_ports"],
                            prometheus_port=(self.config.monitoring.port or PROMETHEUS_PORT)
                            if self.prometheus_beside_head else None)
            self.store.kv.set(LAYOUT_KEY, asdict(layout))
            return layout
        taken = self.ports_in_use(apps)

        def pick(configured: int, default: int) -> int:
            return configured or pick_port(default, taken, self.offset)
        layout = Layout(port=pick(ray.port, 6379), dashboard_port=pick(ray.dashboard_port, 8265),
                        serve_port=pick(ray.serve_port, 8000),
                        client_port=pick(ray.client_port, 10001),
                        agent_port=pick_port(52365, taken, self.offset),
                        worker_ports=pick_port_range(WORKER_PORTS_PER_NODE, taken, self.offset),
                        autoscaler_metrics_port=pick_port(44217, taken, self.offset),
                        dashboard_metrics_port=pick_port(44227, taken, self.offset),
                        prometheus_port=pick(self.config.monitoring.port, PROMETHEUS_PORT))
        self.store.kv.set(LAYOUT_KEY, asdict(layout))
        return layout

    def forget(self) -> None:
        self.store.kv.delete(LAYOUT_KEY)

    def busy_configured_ports(self) -> list[str]:
        """Configured (non-auto) ports that something else already holds (on the host the
        nodes share)."""
        if not self.shared_host:
            return []
        ray = self.config.ray
        return [f"ray.{name}={port}" for name, port in
                (("port", ray.port), ("dashboard_port", ray.dashboard_port),
                 ("serve_port", ray.serve_port), ("client_port", ray.client_port))
                if port and not port_free(port)]

    @staticmethod
    def ports_in_use(apps: list[App]) -> set[int]:
        """Every port a live node app of this cluster was given."""
        taken: set[int] = set()
        for app in apps:
            if app.status in LIVE:
                args = ray_args(app)
                taken.update(v for k, v in args.items() if k.endswith("port") and isinstance(v, int))
                if "min_worker_port" in args:
                    taken.update(range(args["min_worker_port"], args["max_worker_port"] + 1))
                taken.update(int(v) for k, v in app.spec.env.items()
                             if k in HEAD_PORT_ENV and str(v).isdigit())
        return taken

    def private_ports(self, taken: set[int]) -> dict:
        return {name: pick_port(0, taken, self.offset) for name in PRIVATE_PORTS}

    def worker_node_ports(self, taken: set[int]) -> dict:
        """A worker's own ports on a shared host: agent, worker block and private ports."""
        low, high = pick_port_range(WORKER_PORTS_PER_NODE, taken, self.offset)
        return {"dashboard_agent_listen_port": pick_port(0, taken, self.offset),
                "min_worker_port": low, "max_worker_port": high, **self.private_ports(taken)}

"""The node inventory: what runs, asked of the live platform and the live cluster (never only
records). The cluster's apps are those the platform lists with its tag (``TAG_CLUSTER``);
the head is the one of kind head, workers are of kind worker with an index (their names,
``<cluster>-head`` and ``<cluster>-worker-<n>``, are for people and the platform). A Ray
node belongs to an app when it runs on the app's address.

An explicit address (``RAY_ADDRESS``, given to the API and to validation) names the Ray
cluster to read instead: its dashboard, Serve proxy and nodes, whatever head app the
platform lists (the platform's apps are still matched to its nodes).

On CML an app's address is known only from the file its node publishes, one API call per
app. An app keeps its address for life, so each is read once and remembered in the store:
a new process (the next CLI command) does not read hundreds of files again."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from cluster.dashboard import DashboardClient, DashboardError
from cluster.layout import PortLayout
from cluster.platforms.base import Platform
from cluster.platforms.records import LIVE, TAG_CLUSTER, TAG_INDEX, App, node_tags
from cluster.ray_address import ENV, RayAddress, RayAddressUnreachable, resolve_dashboard
from core.errors import Conflict
from core.records import NodeView

NODE_IPS_KEY = "cluster.node_ips"  # app id -> the address its node published


class NoHead(Conflict):
    """The cluster has no running head (nothing to reach, nothing to add workers to)."""

    def __init__(self, what: str = ""):
        super().__init__(f"{what + ': ' if what else ''}the cluster has no running head")


class NodeInventory:
    def __init__(self, config, platform: Platform, layout: PortLayout, token,
                 dashboard_factory=DashboardClient, store=None,
                 address: RayAddress | None = None, resolver=resolve_dashboard):
        """``store``: where published node addresses are remembered (None: this process)."""
        self.config = config
        self.platform = platform
        self.layout = layout
        self.store = store
        self._token = token  # () -> the Ray token, or None
        self._dashboard_factory = dashboard_factory  # (url, token) -> a dashboard client
        self._dashboard: DashboardClient | None = None
        self._node_ips: dict[str, dict] = {}  # app id -> what its node published
        self.address = address  # RAY_ADDRESS: read this cluster, not the platform's head
        self._resolver = resolver  # (address, token) -> the dashboard URL
        self._explicit_url: str | None = None
        self.token_withheld: str | None = None  # why this cluster's token was not sent
        self._snapshot = threading.local()  # see one_listing

    # -- names and apps ---------------------------------------------------------------------
    def tags(self, kind: str, index: int | None = None) -> dict[str, str]:
        """The tags of this cluster's app of ``kind`` (a worker: with its index)."""
        return node_tags(self.config.cluster_name, kind, index)

    @property
    def head_name(self) -> str:
        return f"{self.config.cluster_name}-head"

    def worker_name(self, index: int) -> str:
        return f"{self.config.cluster_name}-worker-{index}"

    @property
    def prometheus_name(self) -> str:
        return f"{self.config.cluster_name}-prometheus"

    @staticmethod
    def worker_index(app: App) -> int | None:
        """A worker app's index (None: not a worker of a cluster)."""
        index = app.spec.tags.get(TAG_INDEX, "") if app.spec.role == "worker" else ""
        return int(index) if index.isdigit() else None

    def apps(self) -> list[App]:
        """This cluster's node apps on the platform (one listing: an API call on CML)."""
        return [a for a in self._platform_apps()
                if a.spec.role == "head" or self.worker_index(a) is not None]

    @contextmanager
    def one_listing(self):
        """Within it (in this thread) the platform's apps are listed once, on first need, and
        that listing is reused: for a run of reads such as a plan, which would otherwise list
        every app a dozen times (three pages each at 256 nodes on CML). Never around writes:
        an app created within would not be seen."""
        if getattr(self._snapshot, "active", False):  # already within one
            yield
            return
        self._snapshot.active, self._snapshot.apps = True, None
        try:
            yield
        finally:
            self._snapshot.active, self._snapshot.apps = False, None

    def _platform_apps(self) -> list[App]:
        """Every app of the platform tagged with this cluster."""
        mine = {TAG_CLUSTER: self.config.cluster_name}
        if not getattr(self._snapshot, "active", False):
            return self.platform.apps_tagged(mine)
        if self._snapshot.apps is None:
            self._snapshot.apps = self.platform.apps_tagged(mine)
        return self._snapshot.apps

    def owned_apps(self) -> list[App]:
        """Every platform app of this cluster: its nodes and its Prometheus."""
        return [a for a in self._platform_apps()
                if a.spec.role in ("head", "prometheus") or self.worker_index(a) is not None]

    def head_app(self, live_only: bool = True, apps: list[App] | None = None) -> App | None:
        for app in self.apps() if apps is None else apps:
            if app.spec.role == "head" and (not live_only or app.status in LIVE):
                return app
        return None

    def worker_apps(self, live_only: bool = True, apps: list[App] | None = None) -> list[App]:
        apps = self.apps() if apps is None else apps
        return sorted((a for a in apps if self.worker_index(a) is not None
                       and (not live_only or a.status in LIVE)), key=self.worker_index)

    # -- addresses ----------------------------------------------------------------------------
    def node_ip(self, app: App) -> str | None:
        """The app's node address: known up front on a shared host; otherwise published by
        the node itself in the project files (read once, then remembered for that app id)."""
        return self.node_ips([app])[app.id]

    def node_ips(self, apps: list[App]) -> dict[str, str | None]:
        """``node_ip`` of each app (by app id)."""
        published = self.published([a for a in apps if not a.ip])
        return {a.id: a.ip or (published.get(a.id) or {}).get("ip") for a in apps}

    def published(self, apps: list[App]) -> dict[str, dict | None]:
        """What each app's node published (``nodes/<app>.json``: its address, and the port
        its platform publishes the app's URL at), by app id. Read at once, several at a time
        (the platform client's rate limit sets the pace), and remembered for the app's life."""
        unknown = [a for a in apps if a.id not in self._node_ips]
        if unknown and self.store is not None:
            self._node_ips.update(_records(self.store.kv.get(NODE_IPS_KEY) or {}))  # others' reads
            unknown = [a for a in unknown if a.id not in self._node_ips]
        if unknown:
            def read(app: App) -> str | None:
                return self.platform.read_file(f"nodes/{app.name}.json")
            if len(unknown) == 1:
                found = [read(unknown[0])]
            else:
                with ThreadPoolExecutor(max_workers=min(len(unknown), 16)) as pool:
                    found = list(pool.map(read, unknown))
            learnt = {app.id: json.loads(raw) for app, raw in zip(unknown, found, strict=True)
                      if raw}
            self._node_ips.update(learnt)
            if learnt and self.store is not None:
                self.store.kv.set(NODE_IPS_KEY, {**(self.store.kv.get(NODE_IPS_KEY) or {}),
                                                 **learnt})
        return {a.id: self._node_ips.get(a.id) for a in apps}

    def forget_node_ips(self) -> None:
        """The cluster is gone: its apps' addresses with it."""
        self._node_ips.clear()
        if self.store is not None:
            self.store.kv.delete(NODE_IPS_KEY)

    def serve_port(self, apps: list[App] | None = None) -> int | None:
        """Where the Serve proxy listens on the head: the port the platform publishes the
        head's URL at (CML: its CDSW_APP_PORT, so the proxy is the head app's public URL),
        else the layout's."""
        layout = self.layout.current()
        head = self.head_app(apps=apps)
        if head is not None and not self.platform.shares_host_network:
            port = (self.published([head]).get(head.id) or {}).get("app_port")
            if port:
                return int(port)
        return layout.serve_port if layout else None

    def _head_endpoint(self, port_of, apps: list[App] | None = None) -> str | None:
        head, layout = self.head_app(apps=apps), self.layout.current()
        ip = self.node_ip(head) if head and layout else None  # no ports known: no address needed
        return f"{ip}:{port_of(layout)}" if ip else None

    def head_address(self) -> str | None:
        """host:port of the head's GCS (with an explicit address: when that is its form)."""
        if self.address is not None:
            return self.address.gcs_address
        return self._head_endpoint(lambda layout: layout.port)

    def dashboard_url(self, apps: list[App] | None = None) -> str | None:
        if self.address is not None:
            try:
                return self._explicit_dashboard_url()
            except RayAddressUnreachable:
                return None
        endpoint = self._head_endpoint(lambda layout: layout.dashboard_port, apps)
        return f"http://{endpoint}" if endpoint else None

    def proxy_url(self) -> str | None:
        """The Serve proxy (HeadOnly: on the head)."""
        if self.address is not None:
            return self._explicit_proxy_url()
        endpoint = self._head_endpoint(lambda layout: self.serve_port())
        return f"http://{endpoint}" if endpoint else None

    def has_head(self) -> bool:
        """Whether there is a head to read from: the explicit address, or a live head app."""
        return self.address is not None or self.head_app() is not None

    def dashboard(self, apps: list[App] | None = None) -> DashboardClient:
        """The head's dashboard (``apps``: the apps just listed, so none is listed again)."""
        if self.address is not None:
            url = self._explicit_dashboard_url()  # RayAddressUnreachable says why not
        else:
            url = self.dashboard_url(apps)
        if url is None:
            raise NoHead()
        if self._dashboard is None or self._dashboard.url != url:
            token = self._ray_token(url) if self.address is not None else self._token()
            self._dashboard = self._dashboard_factory(url, token)
            if self.address is not None and token is None and self.token_withheld:
                self._dashboard.auth_note = self.token_withheld  # said with a 401 / 403
        return self._dashboard

    def forget_dashboard(self) -> None:
        self._dashboard = None
        self._explicit_url = None

    # -- an explicit address (RAY_ADDRESS) ----------------------------------------------------
    def _ray_token(self, dashboard_url: str | None = None) -> str | None:
        """The token to send to the cluster at the explicit address (or to the dashboard it
        named): RAY_AUTH_TOKEN when given; else this config's own token, but only when that
        address (that dashboard) is this config's own cluster, as its platform's head app
        and recorded ports say. Any other cluster gets none: a foreign GCS names whatever
        dashboard it likes, and this cluster's token is a credential for this cluster."""
        if self.address.token:
            return self.address.token
        own = self._own_endpoints()
        if dashboard_url is not None:
            target = dashboard_url.split("://", 1)[-1].rstrip("/")
        else:
            target = self.address.hostport
        if target in own.get(self.address.kind if dashboard_url is None else "dashboard", ()):
            return self._token()
        self.token_withheld = (
            f"{ENV}={self.address.text} is not the cluster of this config ({self.config.cluster_name}), "
            f"so its Ray token was not sent there: give that cluster's token as RAY_AUTH_TOKEN")
        return None

    def _own_endpoints(self) -> dict[str, set[str]]:
        """host:port of this config's cluster, by address kind (from its head app and the
        recorded port layout; empty when it has no head)."""
        out: dict[str, set[str]] = {"gcs": set(), "client": set(), "dashboard": set()}
        head, layout = self.head_app(), self.layout.current()
        ip = self.node_ip(head) if head and layout else None
        if ip:
            out["gcs"].add(f"{ip}:{layout.port}")
            out["client"].add(f"{ip}:{layout.client_port}")
            out["dashboard"].add(f"{ip}:{layout.dashboard_port}")
        return out

    def _explicit_dashboard_url(self) -> str:
        """Resolved once (a GCS or Ray Client address asks the cluster), then remembered."""
        if self._explicit_url is None:
            try:
                self._explicit_url = self._resolver(self.address, self._ray_token())
            except RayAddressUnreachable as e:
                if self.token_withheld and not self.address.token:
                    raise RayAddressUnreachable(f"{e} ({self.token_withheld})") from None
                raise
        return self._explicit_url

    def _explicit_proxy_url(self) -> str | None:
        """Where Serve says its proxy listens (on the head: HeadOnly), or None when Serve
        does not run there."""
        try:
            dashboard = self.dashboard()
            options = dashboard.serve_applications().get("http_options") or {}
        except DashboardError:  # RayAddressUnreachable among them
            return None
        if not options.get("port"):
            return None
        host = options.get("host") or ""
        if host in ("", "0.0.0.0", "::"):  # every interface: the dashboard's host is one
            host = dashboard.url.split("://", 1)[1].rsplit(":", 1)[0]
        return f"http://{host}:{options['port']}"

    # -- Ray nodes ------------------------------------------------------------------------------
    def ray_nodes(self, client: DashboardClient | None = None) -> list[dict]:
        """Ray's node rows; per address the ALIVE row wins over rows of earlier, dead nodes."""
        rows = sorted((client or self.dashboard()).nodes(), key=lambda n: n["state"] == "ALIVE")
        return list({n["node_ip"]: n for n in rows}.values())

    def alive_ips(self) -> set[str]:
        return {n["node_ip"] for n in self.ray_nodes() if n["state"] == "ALIVE"}

    def ray_node_for_ip(self, ip: str) -> dict | None:
        """The Ray node at ``ip`` (None when Ray cannot be asked or has none there)."""
        try:
            return next((n for n in self.ray_nodes() if n["node_ip"] == ip), None)
        except (NoHead, DashboardError):
            return None

    def ray_node_for(self, app: App, nodes: list[dict] | None = None) -> dict | None:
        ip = self.node_ip(app)
        try:
            nodes = self.ray_nodes() if nodes is None else nodes
        except (NoHead, DashboardError):
            return None
        return next((n for n in nodes if n["node_ip"] == ip), None)

    def nodes(self, with_usage: bool = False) -> list[NodeView]:
        """Platform apps and Ray nodes merged; an app whose Ray node is missing is shown too."""
        apps = self.apps()
        head = self.head_app(apps=apps)
        ray_nodes, usage = [], {}
        try:
            client = self.dashboard(apps)
            ray_nodes = self.ray_nodes(client)
            if with_usage and ray_nodes:
                usage = client.usage_by_node()
        except (NoHead, DashboardError):
            pass  # no head or no dashboard: the platform apps are still shown
        out, seen = [], set()
        nodes_apps = ([head] if head else []) + self.worker_apps(apps=apps)
        if ray_nodes:
            self.node_ips(nodes_apps)  # the unknown ones read at once, not one by one below
        for app in nodes_apps:
            # no Ray node to match (no head, or its dashboard down): no address to look up
            node = self.ray_node_for(app, ray_nodes) if ray_nodes else None
            if node:
                seen.add(node["node_id"])
            out.append(_view(node, app, app.spec.role, usage))
        for node in ray_nodes:
            if node["node_id"] not in seen and node["state"] == "ALIVE":
                out.append(_view(node, None, "head" if node["is_head_node"] else "worker", usage))
        return out

    def capacity(self, nodes: list[NodeView] | None = None) -> dict:
        """Totals over ALIVE nodes, in use from Ray's load report; memory in GB."""
        alive = [n for n in (self.nodes(with_usage=True) if nodes is None else nodes) if n.alive]
        total = lambda key: sum(n.resources.get(key, 0) for n in alive)  # noqa: E731
        used = lambda key: sum(n.resources_used.get(key, 0) for n in alive)  # noqa: E731
        cpus, gpus, memory = total("CPU"), total("GPU"), total("memory")
        return {"total_cpus": cpus, "available_cpus": round(cpus - used("CPU"), 3),
                "total_gpus": gpus, "available_gpus": round(gpus - used("GPU"), 3),
                "total_memory": round(memory / 1024 ** 3, 2),
                "available_memory": round((memory - used("memory")) / 1024 ** 3, 2),
                "utilization_percent": round(100 * used("CPU") / cpus, 1) if cpus else 0.0}


def _records(remembered: dict) -> dict[str, dict]:
    """Remembered node files by app id (older stores kept the address alone)."""
    return {k: v if isinstance(v, dict) else {"ip": v} for k, v in remembered.items()}


def _view(node: dict | None, app: App | None, node_type: str, usage: dict) -> NodeView:
    return NodeView(
        node_type=node_type, alive=bool(node and node["state"] == "ALIVE"),
        node_id=node["node_id"] if node else None,
        node_name=(node.get("node_name") or node["node_ip"]) if node else (app.name if app else None),
        node_ip=node["node_ip"] if node else (app.ip if app else None),
        platform_app_id=app.id if app else None,
        platform_app_name=app.name if app else None,
        platform_status=app.status if app else None,
        deployed_at=(app.created_at or None) if app else None,
        resources=dict(node["resources_total"]) if node else {},
        resources_used=dict(usage.get(node["node_id"], {})) if node else {})

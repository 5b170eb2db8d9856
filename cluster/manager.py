"""ClusterManager: the Ray cluster as a set of platform apps, used by checkpoints and the API.

It holds the four parts, each asking the live platform and cluster (never only records):

    layout     where the head listens (ports chosen once, recorded)
    inventory  what runs: node apps, Ray nodes, addresses, capacity (reads)
    lifecycle  start the head, add / drain / remove workers, tear down (writes)
    serve      Serve applications through the dashboard's REST API
"""
from __future__ import annotations

import os
import secrets

from cluster.dashboard import DashboardClient
from cluster.inventory import NodeInventory
from cluster.layout import PortLayout
from cluster.lifecycle import NodeLifecycle
from cluster.platforms.base import Platform
from cluster.ray_address import RayAddress
from cluster.serve import ServeManager
from core.timing import SYSTEM_CLOCK, Clock
from store import Store


class ClusterManager:
    def __init__(self, config, store: Store, platform: Platform, clock: Clock = SYSTEM_CLOCK,
                 dashboard_factory=DashboardClient, ray_address: RayAddress | None = None):
        """``ray_address``: read the Ray cluster there (RAY_ADDRESS) instead of the head the
        platform lists; for reads only (the API's views, validation), never for a run."""
        self.config = config
        self.store = store
        self.platform = platform
        self.clock = clock
        self.layout = PortLayout(config, store, platform.shares_host_network,
                                 prometheus_beside_head=platform.beside_head)
        self.inventory = NodeInventory(config, platform, self.layout, self.token,
                                       dashboard_factory, store, address=ray_address)
        self.serve = ServeManager(config, self.inventory, clock)
        self.lifecycle = NodeLifecycle(config, store, platform, self.inventory, self.layout,
                                       self.serve, self.auth_env, clock)

    def token(self) -> str | None:
        """The cluster's Ray auth token, created on first use (0600 in the state dir)."""
        if self.config.ray.auth != "token":
            return None
        path = self.config.state_dir / "ray_token"
        if not path.exists():
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:  # another process made it first
                return path.read_text().strip()
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def info(self) -> dict:
        """Where things are: the head's GCS, the dashboard, the Serve proxy, the management
        API on the cluster and (monitoring on) Prometheus; None for what is not there."""
        from cluster.monitoring import prometheus_url
        inventory = self.inventory
        has_head = inventory.has_head()
        # (none where the caller shares the nodes' network: the inside address is the one)
        head = (inventory.head_app() if has_head and inventory.address is None
                and not self.platform.shares_host_network else None)
        head_address = inventory.head_address() if has_head else None
        return {"cluster_name": self.config.cluster_name, "platform": self.config.platform,
                # the head app's own URL where the platform publishes apps (CML): the Serve
                # proxy listens there, for callers outside the platform's network
                "head_url": self.platform.public_url(head) if head else None,
                "head_address": head_address,
                "client_address": self._client_address(head_address),
                "dashboard_url": inventory.dashboard_url() if has_head else None,
                "serve_url": self.serve.proxy_url if has_head else None,
                "management_api_url": self.serve.management_api_url() if has_head else None,
                "prometheus_url": prometheus_url(self)
                if has_head and self.config.monitoring.enabled else None}

    def _client_address(self, head_address: str | None) -> str | None:
        """``ray://`` of the head's Ray Client server (None for a cluster by RAY_ADDRESS: its
        client port is not ours to know)."""
        layout = self.layout.current()
        if self.inventory.address is not None or not head_address or layout is None:
            return None
        return f"ray://{head_address.rsplit(':', 1)[0]}:{layout.client_port}"

    def auth_env(self) -> dict:
        token = self.token()
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {}

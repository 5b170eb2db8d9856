"""What the API's views call: one object per app, holding the config, the store, the cluster
manager, short-lived caches of live cluster answers and of plans, and the background run
launcher. No Flask here."""
from __future__ import annotations

import threading
import time

from api_server.errors import TooManyRequests
from checkpoints.background import RunLauncher
from checkpoints.base import Context, EventReporter
from checkpoints.factory import make_context
from checkpoints.notifications import Dispatcher
from cluster.config import Config
from cluster.config.desired import apply_desired, digest
from cluster.health import all_checks
from cluster.manager import ClusterManager
from cluster.ray_address import RayAddress
from core.errors import DomainError
from store import Store


class TTLCache:
    """Live cluster answers, kept ``ttl`` seconds. Once a value is older, the next caller
    starts one background refresh and every caller keeps getting the previous value until
    it lands (stale-while-revalidate): no request waits on the dashboard, and the dashboard
    sees one query per key per ``ttl``. Only the very first call of a key waits."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._values: dict[str, tuple[float, object]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, compute):
        if self.ttl <= 0:
            return compute()
        hit = self._values.get(key)
        if hit is None:
            with self._lock(key):
                hit = self._values.get(key)
                if hit is None:
                    hit = self._values[key] = (time.monotonic(), compute())
            return hit[1]
        if time.monotonic() - hit[0] >= self.ttl and self._lock(key).acquire(blocking=False):
            threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
        return hit[1]

    def _refresh(self, key: str, compute) -> None:
        try:
            self._values[key] = (time.monotonic(), compute())
        except Exception:  # keep serving the previous value; the next call tries again
            pass
        finally:
            self._locks[key].release()

    def clear(self) -> None:
        self._values.clear()


class StreamSlots:
    """Event streams hold a server thread each: a bounded number per process, and per
    principal, so streams never starve the rest of the API."""

    def __init__(self, per_process: int, per_principal: int):
        self.per_process = per_process
        self.per_principal = per_principal
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, principal: str):
        """Take a slot (TooManyStreams when none is free); returns what frees it (once)."""
        with self._lock:
            if sum(self._open.values()) >= self.per_process:
                raise TooManyStreams(f"this server has {self.per_process} event streams open "
                                     f"already; retry shortly (or poll GET /api/v1/deployments/{{id}})")
            if self._open.get(principal, 0) >= self.per_principal:
                raise TooManyStreams(f"{principal} has {self.per_principal} event streams open "
                                     f"already (api.sse_per_principal)")
            self._open[principal] = self._open.get(principal, 0) + 1
        released = threading.Event()

        def release():
            with self._lock:
                if not released.is_set():
                    released.set()
                    self._open[principal] -= 1
        return release


class TooManyStreams(TooManyRequests):
    """No event stream slot is free."""


DESIRED_KEY = "control.desired"  # the desired state the last run was started with


class Services:
    def __init__(self, config: Config, cache_seconds: float = 1.0, sse_process_limit: int = 16,
                 ray_address: RayAddress | None = None, control_plane: bool = False,
                 public_url: str | None = None, plan_cache_seconds: float = 10.0):
        """``ray_address`` (RAY_ADDRESS): the cluster the views read. Plans and runs keep
        acting on the platform's own cluster (what a deploy would do). ``control_plane``:
        this process owns the store (its one writer), runs the runs, and continues the one
        it was running when it (re)starts (``recover``)."""
        self.base_config = config
        self.control_plane = control_plane
        # the cluster's management API forwards here (a control plane only)
        self.control_plane_url = public_url if control_plane else None
        self.store = Store(config.state_dir, owned=control_plane)
        self.dispatcher = Dispatcher(self.store.clock)  # one delivery thread for every context
        self.ray_address = ray_address
        self._use(self.config_for(self.store.kv.get(DESIRED_KEY)))
        self.cache = TTLCache(cache_seconds)
        # plans for readers (a checkpoint's, the whole run's): each asks the platform
        self.plans = TTLCache(plan_cache_seconds)
        self.runs = RunLauncher(self._run_context, on_finished=lambda run_id: self.invalidate())
        self.streams = StreamSlots(sse_process_limit, config.api.sse_per_principal)

    def config_for(self, desired: dict | None) -> Config:
        """The config a run of ``desired`` (a client's desired state) acts with."""
        if desired is None:
            return self.base_config
        jobs = self.base_config.state_dir / "desired" / digest(desired) / "jobs_config.yaml"
        return apply_desired(self.base_config, desired, jobs)

    def _use(self, config: Config) -> None:
        """What the views read from now on (the config of the latest desired state)."""
        self.config = config
        self.ctx = make_context(config, store=self.store, dispatcher=self.dispatcher)
        self.ctx.control_plane_url = self.control_plane_url
        self.cluster = self.ctx.cluster if self.ray_address is None else ClusterManager(
            config, self.store, self.ctx.platform, ray_address=self.ray_address)

    def _run_context(self, force: bool, desired: dict | None) -> Context:
        config = self.config_for(desired)
        if desired is not None and desired != self.store.kv.get(DESIRED_KEY):
            self.store.kv.set(DESIRED_KEY, desired)
            self._use(config)
            self.invalidate()  # what was planned, was planned for the previous desired state
        reporter = EventReporter(self.store, run_id=lambda: None)
        ctx = make_context(config, reporter, store=self.store, force=force,
                           dispatcher=self.dispatcher)
        ctx.control_plane_url = self.control_plane_url
        reporter.run_id = lambda: ctx.run_id  # set by the orchestrator once the run exists
        return ctx

    # -- cluster views (cached) -----------------------------------------------------------------
    def nodes(self) -> list:
        return self.cache.get("nodes", lambda: self.cluster.inventory.nodes(with_usage=True))

    def capacity(self) -> dict:
        return self.cache.get("capacity", lambda: self.cluster.inventory.capacity(self.nodes()))

    def serve_status(self) -> dict:
        def compute():
            try:
                return self.cluster.serve.status() if self.cluster.inventory.has_head() else {}
            except DomainError:
                return {}
        return self.cache.get("serve", compute)

    def status(self) -> dict:
        def compute():
            nodes = self.nodes()
            alive = sum(n.alive for n in nodes)
            apps = self.serve_status()
            healthy = (bool(nodes) and alive == len(nodes)
                       and all(a.get("status") == "RUNNING" for a in apps.values()))
            return {"healthy": healthy, "total_nodes": len(nodes), "alive_nodes": alive,
                    "total_applications": len(apps), "resources": self.capacity()}
        return self.cache.get("status", compute)

    def health_checks(self) -> list[dict]:
        return [c.to_dict() for c in all_checks(self.cluster)]

    def ray_connected(self) -> bool:
        inventory = self.cluster.inventory
        return self.cache.get("ray_connected", lambda: inventory.has_head()
                              and self._dashboard_healthy())

    def _dashboard_healthy(self) -> bool:
        try:
            return self.cluster.inventory.dashboard().healthy()
        except DomainError:  # an explicit address nobody answers at
            return False

    def platform_available(self) -> bool:
        return self.cache.get("platform_ok", lambda: not self.ctx.platform.check())

    def invalidate(self) -> None:
        self.cache.clear()
        self.plans.clear()

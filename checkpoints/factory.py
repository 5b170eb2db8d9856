"""Builds the collaborators of a run from a config: store, platform, cluster, context."""
from __future__ import annotations

from checkpoints.base import Context, NullReporter, Reporter
from checkpoints.notifications import Dispatcher, Notifier
from cluster.config import Config
from cluster.dashboard import DashboardClient
from cluster.manager import ClusterManager
from cluster.platforms import make_platform
from cluster.ray_address import RayAddress
from core.timing import SYSTEM_CLOCK, Clock
from store import Store


def make_context(config: Config, reporter: Reporter | None = None, store: Store | None = None,
                 force: bool = False, clock: Clock = SYSTEM_CLOCK, platform=None,
                 dashboard_factory=DashboardClient, ray_address: RayAddress | None = None,
                 dispatcher: Dispatcher | None = None) -> Context:
    """``platform`` and ``dashboard_factory`` default to the real ones (tests pass fakes
    behind the same interfaces). ``ray_address`` (RAY_ADDRESS) makes the cluster read the
    Ray cluster there: for live checks only, never for a run (see ClusterManager).
    ``dispatcher``: the process's notification deliverer (a server makes one for all its
    contexts); a new one when not given."""
    store = store or Store(config.state_dir, clock)
    platform = platform or make_platform(config, store)
    return Context(config=config, store=store, platform=platform,
                   cluster=ClusterManager(config, store, platform, clock, dashboard_factory,
                                          ray_address=ray_address),
                   reporter=reporter or NullReporter(), force=force, clock=clock,
                   notifier=Notifier(config, store, dispatcher))

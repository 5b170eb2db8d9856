"""Builds the collaborators of a run from a config: store, platform, cluster, context."""
from __future__ import annotations

from checkpoints.base import Context, NullReporter, Reporter
from cluster.config import Config
from cluster.manager import ClusterManager
from cluster.platforms import make_platform
from core.timing import SYSTEM_CLOCK, Clock
from store import Store


def make_context(config: Config, reporter: Reporter | None = None, store: Store | None = None,
                 force: bool = False, clock: Clock = SYSTEM_CLOCK) -> Context:
    store = store or Store(config.state_dir, clock)
    platform = make_platform(config, store)
    return Context(config=config, store=store, platform=platform,
                   cluster=ClusterManager(config, store, platform, clock),
                   reporter=reporter or NullReporter(), force=force, clock=clock)

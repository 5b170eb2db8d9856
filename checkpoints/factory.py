"""Builds the collaborators of a run from a config: store, platform, cluster, context."""
from __future__ import annotations

from checkpoints.errors import InvalidRequest
from checkpoints.base import Context, NullReporter, Reporter
from cluster.config import Config
from cluster.cml_platform import CMLPlatform
from cluster.local_platform import LocalPlatform
from cluster.manager import ClusterManager
from store import Store


def make_platform(config: Config, store: Store):
    if config.platform == "local":
        return LocalPlatform(store, config.project_dir, config.state_dir)
    if config.platform == "cml":
        return CMLPlatform(config)
    raise InvalidRequest(f"platform {config.platform!r} is not available in this build", "platform")


def make_context(config: Config, reporter: Reporter | None = None, store: Store | None = None,
                 force: bool = False) -> Context:
    store = store or Store(config.state_dir)
    platform = make_platform(config, store)
    return Context(config=config, store=store, platform=platform,
                   cluster=ClusterManager(config, store, platform),
                   reporter=reporter or NullReporter(), force=force)

"""The platforms nodes can run on, by the name the config's ``platform:`` uses.

This tuple is the registration: adding a platform is its module under cluster/platforms/,
one entry here, and its tests (see docs/architecture.md)."""
from __future__ import annotations

from cluster.platforms.base import Platform
from cluster.platforms.cml import CMLPlatform
from cluster.platforms.local import LocalPlatform

REGISTRY: dict[str, type[Platform]] = {p.name: p for p in (LocalPlatform, CMLPlatform)}
DEFAULT = LocalPlatform.name  # what a config without ``platform:`` runs on


def make_platform(config, store) -> Platform:
    return REGISTRY[config.platform].create(config, store)

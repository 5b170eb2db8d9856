"""The platforms nodes can run on, by the name the config's ``platform:`` uses.

This tuple is the registration: adding a platform is its module under cluster/platforms/,
one entry here, and its tests (see docs/architecture.md)."""
from __future__ import annotations

from cluster.platforms.base import Platform
from cluster.platforms.cml import CMLPlatform
from cluster.platforms.local import LocalPlatform
from cluster.platforms.ssh.platform import SSHPlatform

REGISTRY: dict[str, type[Platform]] = {p.name: p for p in (LocalPlatform, CMLPlatform, SSHPlatform)}
DEFAULT = LocalPlatform.name  # what a config without ``platform:`` runs on


def make_platform(config, store) -> Platform:
    return REGISTRY[config.platform].create(config, store)


def published_port(environ) -> tuple[int, str] | None:
    """(port, the variable that said so) when this process runs as an app a platform
    publishes at a port (``Platform.published_port``), else None."""
    return next((found for p in REGISTRY.values() if (found := p.published_port(environ))), None)

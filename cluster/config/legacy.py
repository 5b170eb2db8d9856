"""Older config shapes users already have, and the environment variables that override
fields. Platform-specific shapes and variables belong to their platform (its ``map_legacy``
and ``env_overrides``); the generic ones are here."""
from __future__ import annotations

import copy

from cluster.platforms import REGISTRY
from cluster.platforms.base import ConfigShapeError

RAY_CLUSTER_FIELDS = {"num_workers": ("workers", "count"), "head_cpu": ("head", "cpu"),
                      "head_memory": ("head", "memory"), "worker_cpu": ("workers", "cpu"),
                      "worker_memory": ("workers", "memory"),
                      "worker_gpus": ("workers", "gpus")}

ENV_OVERRIDES = {
    "RAY_NUM_WORKERS": ("workers", "count"),
    "RAY_WORKER_GPUS": ("workers", "gpus"),
    "FORCE_REBUILD": (None, "force_rebuild"),
}


def map_legacy(doc: dict, warnings: list[str] | None = None) -> dict:
    """A copy of ``doc`` with the ``ray_cluster:`` shape and every platform's older shapes
    mapped onto the current one. Unknown fields in them raise ConfigShapeError; defaults a
    mapping chose are said in ``warnings``."""
    doc = copy.deepcopy(doc)
    for platform in REGISTRY.values():
        doc = platform.map_legacy(doc, warnings)
    if "ray_cluster" in doc:
        rc = doc.pop("ray_cluster") or {}
        if not isinstance(rc, dict):
            raise ConfigShapeError({"ray_cluster": ["Must be a mapping."]})
        unknown = {f"ray_cluster.{k}": ["Unknown field."] for k in rc
                   if k not in RAY_CLUSTER_FIELDS}
        if unknown:
            raise ConfigShapeError(unknown)
        for old, (section, key) in RAY_CLUSTER_FIELDS.items():
            if old in rc:
                _section(doc, section)[key] = rc[old]
    return doc


def all_env_overrides() -> dict[str, tuple[str | None, str]]:
    """Every variable that overrides a field: variable -> (section or None, key)."""
    out = dict(ENV_OVERRIDES)
    for platform in REGISTRY.values():
        for var, key in platform.env_overrides.items():
            out[var] = (platform.settings_section, key)
    return out


def apply_env(doc: dict, environ) -> dict[str, str]:
    """Apply overrides in place, then each platform's ``env_defaults`` (fields only the
    environment gives); returns {dotted field: variable} to name them in errors."""
    origins = {}
    for var, (section, key) in all_env_overrides().items():
        value = environ.get(var)
        if value is None or value == "":
            continue
        if section is not None and doc.get(section) is None:  # absent, or empty (`workers:`)
            doc[section] = {}
        target = doc if section is None else doc[section]
        if not isinstance(target, dict):  # the schema says what is wrong with it
            continue
        target[key] = value
        origins[f"{section}.{key}" if section else key] = var
    for platform in REGISTRY.values():  # then what only fills in fields the config leaves out
        section = platform.settings_section
        if section is None or not isinstance(doc.get(section) or {}, dict):
            continue
        target = dict(doc.get(section) or {})
        filled = platform.env_defaults(target, environ)
        if filled:
            doc[section] = target
            origins.update({f"{section}.{key}": var for key, var in filled.items()})
    return origins


def _section(doc: dict, name: str) -> dict:
    """The section ``name`` of ``doc`` to fill in: made when absent or empty (``workers:``
    with nothing under it); ConfigShapeError when it is not a mapping."""
    if doc.get(name) is None:
        doc[name] = {}
    if not isinstance(doc[name], dict):
        raise ConfigShapeError({name: ["Must be a mapping."]})
    return doc[name]

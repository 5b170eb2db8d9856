"""The desired state a client hands a control plane, and the config a run of it acts with.

A control plane (``python -m api_server --control-plane``, on CML the control app) has its
own config: the platform, its credentials, the approval policy, the API's tokens and
listeners, notifications. A client (``deploy_master.py --server URL``, CI) sends what the
cluster should look like: its config's ``ray``, ``head``, ``workers``, ``serve`` and
``monitoring`` sections and ``force_rebuild`` (older shapes mapped, its environment
overrides such as RAY_NUM_WORKERS applied), and its jobs_config document. A run acts with
the control plane's config with those sections replaced: who may approve what, and how, is
never the client's to say. The cluster's name and platform must be the control plane's.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import yaml

from cluster.config import Config, ConfigError, parse_config
from cluster.config.effective import effective_config
from core.errors import Invalid

DESIRED_SECTIONS = ("ray", "head", "workers", "serve", "monitoring", "force_rebuild")
# what the control plane's Prometheus may read and whom it sends it to stays the control
# plane's to say (a token file on its host, scrape targets)
CONTROL_PLANE_ONLY = {"monitoring": ("api_targets", "api_token_file")}


class DesiredStateInvalid(Invalid):
    """The desired state cannot be applied (another cluster, a bad section)."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message, field="desired")
        self.errors = errors or {"desired": [message]}


def desired_state(config: Config) -> dict:
    """What a client sends for ``config`` (a dict of plain data, no secret in it)."""
    doc = config.document
    # every section, a left-out one as empty: the client's defaults are what it asks for,
    # not the control plane's own values for them
    sections = {k: copy.deepcopy(doc[k]) if doc.get(k) is not None else
                (False if k == "force_rebuild" else {}) for k in DESIRED_SECTIONS}
    try:
        jobs = yaml.safe_load(Path(config.jobs_config).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError({"(file)": [f"{config.jobs_config} cannot be read: {e}"]},
                          str(config.jobs_config)) from None
    return {"cluster_name": config.cluster_name, "platform": config.platform,
            "config": sections, "jobs": jobs}


def digest(desired: dict) -> str:
    """The same desired state, as sent, gives the same digest (it names its jobs file)."""
    canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def state_digest(config: Config) -> str:
    """What a run of ``config`` converges to, as a digest: the same cluster asked for twice
    gives the same one however it was written (RAY_NUM_WORKERS's "2" and a file's 2, key
    order, an older shape), so a re-run finds its run."""
    from cluster.jobs_config import load_jobs_config
    flat = {k: v for k, v in effective_config(config).items() if k != "jobs_config"}
    canonical = json.dumps({"config": flat, "jobs": load_jobs_config(config.jobs_config)},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def apply_desired(config: Config, desired: dict, jobs_path: Path) -> Config:
    """``config`` (the control plane's) with the desired sections of ``desired``; its jobs
    are written to ``jobs_path``. DesiredStateInvalid (with field errors) when it does not
    apply."""
    for key in ("cluster_name", "platform"):
        if desired.get(key) != getattr(config, key):
            raise DesiredStateInvalid(
                f"this control plane runs {key} {getattr(config, key)!r}, the request is for "
                f"{desired.get(key)!r}: {'cluster names' if key == 'cluster_name' else 'platforms'}"
                f" differ (point the client at the control plane of its own cluster)")
    sections = desired.get("config") or {}
    unknown = sorted(set(sections) - set(DESIRED_SECTIONS))
    if unknown:
        raise DesiredStateInvalid(f"not sections a client sets: {', '.join(unknown)} (the control "
                                  f"plane's own config says those)")
    doc = copy.deepcopy(config.document)
    for key, value in sections.items():
        value = copy.deepcopy(value)
        for kept in CONTROL_PLANE_ONLY.get(key, ()):
            if isinstance(value, dict):
                value.pop(kept, None)
                if isinstance(doc.get(key), dict) and kept in doc[key]:
                    value[kept] = doc[key][kept]
        doc[key] = value
    jobs_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = jobs_path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(desired.get("jobs") or {}))
    os.replace(tmp, jobs_path)
    doc["jobs_config"] = str(jobs_path)
    try:
        return parse_config(doc, source=config.source, environ={},
                            state_dir_override=str(config.state_dir), base_dir=config.base_dir)
    except ConfigError as e:
        raise DesiredStateInvalid(f"the desired state is invalid: {e}",
                                  {f"desired.{k}": v for k, v in e.errors.items()}) from None

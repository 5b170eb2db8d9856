"""The ``cml:`` config section, its environment overrides and the older ``cai:`` shape."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from marshmallow import RAISE, Schema, fields, validate

from cluster.platforms.base import ConfigShapeError
from cluster.platforms.cml.client import DEFAULT_MAX_REQUESTS_PER_SECOND


@dataclass(frozen=True)
class CMLSettings:
    host: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    project_name: str | None = None
    project_id: str | None = None
    git_url: str | None = None
    runtime_identifier: str | None = None
    project_timeout_seconds: float = 900
    timeout_seconds: float = 10  # one API call, retries included, when CML does not answer
    shared_host_network: bool = False  # true when every app runs on one host (the simulator)
    # every API call of one client (all its threads, retries included) stays under this
    max_requests_per_second: float = DEFAULT_MAX_REQUESTS_PER_SECOND


class CMLSchema(Schema):
    class Meta:
        unknown = RAISE

    host = fields.Url(load_default=None, allow_none=True, require_tld=False)
    api_key = fields.String(load_default=None, allow_none=True)
    project_name = fields.String(load_default=None, allow_none=True)
    project_id = fields.String(load_default=None, allow_none=True)
    git_url = fields.String(load_default=None, allow_none=True)
    runtime_identifier = fields.String(load_default=None, allow_none=True)
    project_timeout_seconds = fields.Float(load_default=900, validate=validate.Range(min=1))
    timeout_seconds = fields.Float(load_default=10, validate=validate.Range(min=0.5, max=600))
    shared_host_network = fields.Boolean(load_default=False)
    max_requests_per_second = fields.Float(load_default=DEFAULT_MAX_REQUESTS_PER_SECOND,
                                           validate=validate.Range(min=0, min_inclusive=False))

    settings_type = CMLSettings  # what the loaded section becomes (config.platform_settings)


ENV_OVERRIDES = {"CML_HOST": "host", "CML_API_KEY": "api_key",
                 "RUNTIME_IDENTIFIER": "runtime_identifier"}


def required_when_selected(section: dict) -> dict[str, list[str]]:
    return {k: ["Required when platform is cml."] for k in ("host", "api_key")
            if not section.get(k)}


def map_cai(doc: dict) -> dict:
    """The ``cai:`` shape users already have (host, api_key, project_id, num_workers,
    resources{cpu, memory, num_gpus}, head_resources{cpu, memory}, runtime_identifier)."""
    if "cai" not in doc:
        return doc
    cai = doc.pop("cai") or {}
    if not isinstance(cai, dict):
        raise ConfigShapeError({"cai": ["Must be a mapping."]})
    doc.setdefault("platform", "cml")
    cml = doc.setdefault("cml", {})
    for key in ("host", "api_key", "project_id", "runtime_identifier"):
        if key in cai:
            cml[key] = cai.pop(key)
    workers = doc.setdefault("workers", {})
    if "num_workers" in cai:
        workers["count"] = cai.pop("num_workers")
    res = cai.pop("resources", {}) or {}
    for old, new in (("cpu", "cpu"), ("memory", "memory"), ("num_gpus", "gpus")):
        if old in res:
            workers[new] = res.pop(old)
    head_res = cai.pop("head_resources", {}) or {}
    head = doc.setdefault("head", {})
    for key in ("cpu", "memory"):
        if key in head_res:
            head[key] = head_res.pop(key)
    leftovers = {f"cai.{k}": ["Unknown field."] for k in cai}
    leftovers.update({f"cai.resources.{k}": ["Unknown field."] for k in res})
    leftovers.update({f"cai.head_resources.{k}": ["Unknown field."] for k in head_res})
    if leftovers:
        raise ConfigShapeError(leftovers)
    return doc

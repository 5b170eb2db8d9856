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
    # where the control plane runs: "app" (an application in the project, <cluster>-control,
    # which the CLI bootstraps and then talks to), "embedded" (in the CLI's own process:
    # only where every pod is reachable from it); "auto": embedded with shared_host_network
    control_plane: str = "auto"
    control_timeout_seconds: float = 600  # how long a bootstrap waits for the control app's URL
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
    control_plane = fields.String(load_default="auto", validate=validate.OneOf(
        ["auto", "app", "embedded"]))
    control_timeout_seconds = fields.Float(load_default=600, validate=validate.Range(min=10))

    settings_type = CMLSettings  # what the loaded section becomes (config.platform_settings)


ENV_OVERRIDES = {"CML_HOST": "host", "CML_API_KEY": "api_key",
                 "RUNTIME_IDENTIFIER": "runtime_identifier"}

# An existing project, when the config names none by id: CML_PROJECT_ID (set by the user),
# then CDSW_PROJECT_ID (set by CML in its own sessions and jobs: the project they run in).
PROJECT_ID_VARS = ("CML_PROJECT_ID", "CDSW_PROJECT_ID")


def env_defaults(section: dict, environ) -> dict[str, str]:
    """What the environment gives when the config says nothing: inside a CML workload (the
    control app), the workspace (CDSW_API_URL) and the key of the user it runs as
    (CDSW_APIV2_KEY, which CML sets there: no key is handed to it); and ``project_id``.
    CDSW_PROJECT_ID is ambient (every CML session has it), so it never overrides a project
    the config names by ``project_name``; CML_PROJECT_ID is the user's explicit choice and
    does."""
    filled = {}
    api_url = (environ.get("CDSW_API_URL") or "").strip()
    if not section.get("host") and api_url:
        section["host"] = api_url.removesuffix("/").removesuffix("/api/v1")
        filled["host"] = "CDSW_API_URL"
    if not section.get("api_key") and environ.get("CDSW_APIV2_KEY"):
        section["api_key"] = environ["CDSW_APIV2_KEY"]
        filled["api_key"] = "CDSW_APIV2_KEY"
    return {**filled, **_project_from(section, environ)}


def _project_from(section: dict, environ) -> dict[str, str]:
    if section.get("project_id"):
        return {}
    for var in PROJECT_ID_VARS:
        value = (environ.get(var) or "").strip()
        if not value or (var == "CDSW_PROJECT_ID" and section.get("project_name")):
            continue
        section["project_id"] = value
        return {"project_id": var}
    return {}


def required_when_selected(section: dict) -> dict[str, list[str]]:
    return {k: ["Required when platform is cml."] for k in ("host", "api_key")
            if not section.get(k)}


def map_cai(doc: dict, warnings: list[str] | None = None) -> dict:
    """The ``cai:`` shape users already have (host, api_key, project_id, num_workers,
    resources{cpu, memory, num_gpus}, head_resources{cpu, memory, num_gpus}, runtime_identifier),
    with the seed tool's defaults: one worker when ``num_workers`` is absent, the head sized
    as a worker (never its GPUs) when ``head_resources`` is absent, and the head's
    ``num_gpus`` ignored (the head always gets 0 GPUs), each said in ``warnings``."""
    if "cai" not in doc:
        return doc
    cai = doc.pop("cai") or {}
    if not isinstance(cai, dict):
        raise ConfigShapeError({"cai": ["Must be a mapping."]})
    for key in ("resources", "head_resources"):
        if not isinstance(cai.get(key) or {}, dict):
            raise ConfigShapeError({f"cai.{key}": ["Must be a mapping."]})
    doc.setdefault("platform", "cml")
    cml = _section(doc, "cml")
    for key in ("host", "api_key", "project_id", "runtime_identifier"):
        if key in cai:
            cml[key] = cai.pop(key)
    workers = _section(doc, "workers")
    if "num_workers" in cai:
        workers["count"] = cai.pop("num_workers")
    else:
        workers.setdefault("count", 1)
    res = cai.pop("resources", {}) or {}
    for old, new in (("cpu", "cpu"), ("memory", "memory"), ("num_gpus", "gpus")):
        if old in res:
            workers[new] = res.pop(old)
    head = _section(doc, "head")
    head_res = cai.pop("head_resources", None) or {}
    if "num_gpus" in head_res:  # the seed gave the head 0 GPUs whatever this said
        ignored = head_res.pop("num_gpus")
        if warnings is not None:
            warnings.append(f"cai: head_resources.num_gpus={ignored!r} ignored: the head "
                            f"always gets 0 GPUs")
    if head_res:  # empty (or only num_gpus) counts as absent
        for key in ("cpu", "memory"):
            if key in head_res:
                head[key] = head_res.pop(key)
    else:
        sized = _head_as_worker(head, workers)
        if sized and warnings is not None:
            warnings.append(f"cai: head_resources absent: the head uses the worker resources "
                            f"({sized})")
    leftovers = {f"cai.{k}": ["Unknown field."] for k in cai}
    leftovers.update({f"cai.resources.{k}": ["Unknown field."] for k in res})
    leftovers.update({f"cai.head_resources.{k}": ["Unknown field."] for k in head_res})
    if leftovers:
        raise ConfigShapeError(leftovers)
    return doc


def _section(doc: dict, name: str) -> dict:
    """A section of ours that the ``cai:`` shape fills in (made when absent)."""
    if doc.get(name) is None:
        doc[name] = {}
    if not isinstance(doc[name], dict):
        raise ConfigShapeError({name: ["Must be a mapping."]})
    return doc[name]


def _head_as_worker(head: dict, workers: dict) -> str:
    """Give the head the workers' CPU and memory where the config sets none for it; what it
    got, for people ("2 CPU, 8 GiB"), or "" when the config sized the head itself."""
    from cluster.config.schema import WorkersSchema  # the defaults (the schema imports us)
    fields_ = WorkersSchema().fields
    filled = False
    for key in ("cpu", "memory"):
        value = workers.get(key, fields_[key].load_default)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key not in head and number:  # else the workers' field error says what is wrong
            head[key] = value
            filled = True
    cpu, memory = head.get("cpu"), head.get("memory")
    if not filled or not all(isinstance(v, (int, float)) for v in (cpu, memory)):
        return ""
    return f"{cpu:g} CPU, {memory:g} GiB"


def runtime_choices(available: list[str], shown: int = 5) -> str:
    """"choose one of: ..." naming the workspace's runtimes, Python ones first."""
    if not available:
        return "the workspace lists no runtimes (GET /api/v2/runtimes)"
    ordered = sorted(available, key=lambda i: ("python" not in i.lower(), i))
    more = f" (and {len(ordered) - shown} more: GET /api/v2/runtimes)" if len(ordered) > shown else ""
    return "choose one of: " + ", ".join(ordered[:shown]) + more

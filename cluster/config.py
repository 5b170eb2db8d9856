"""Cluster configuration: one YAML file, validated by marshmallow into typed objects.

Every bad field is reported at once (``ConfigError.errors``: dotted path -> messages), and
nothing is started from a config that failed. Older shapes (``cai:``, ``ray_cluster:``) are
mapped onto ours before validation, and a few environment variables override fields.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from marshmallow import (EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate,
                         validates_schema)

CHECKPOINT_NAMES = ("prerequisites", "project_setup", "job_creation", "head_launch",
                    "worker_launch", "serve_deploy", "validation")
DEFAULT_CONFIG = Path("examples/cluster.local.yaml")

NAME_RE = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
IMPORT_PATH_RE = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


def _port(value: int) -> None:
    if value != 0 and not 1024 <= value <= 65535:
        raise ValidationError("Must be 0 (pick a free port) or between 1024 and 65535.")


def Port(**kw) -> fields.Integer:  # noqa: N802 - a field factory reads like a field class
    return fields.Integer(validate=_port, **kw)


class ConfigError(Exception):
    """The config is unusable. ``errors`` maps each bad field's dotted path to its messages."""

    def __init__(self, errors: dict[str, list[str]], source: str = "config"):
        self.errors = errors
        self.source = source
        lines = [f"  {path}: {'; '.join(msgs)}" for path, msgs in sorted(errors.items())]
        super().__init__(f"{source} is invalid ({len(errors)} field error"
                         f"{'s' if len(errors) != 1 else ''}):\n" + "\n".join(lines))


@dataclass(frozen=True)
class NodeResources:
    cpu: float
    memory: float  # GB
    gpus: int = 0
    object_store_memory: float | None = None  # GB; default 30% of memory

    @property
    def memory_bytes(self) -> int:
        return int(self.memory * 1024 ** 3)

    @property
    def object_store_bytes(self) -> int:
        gb = self.object_store_memory or max(self.memory * 0.3, 0.1)
        return int(gb * 1024 ** 3)


@dataclass(frozen=True)
class WorkersConfig(NodeResources):
    count: int = 0


@dataclass(frozen=True)
class RayConfig:
    version: str | None = None
    port: int = 0  # GCS
    dashboard_port: int = 0
    serve_port: int = 0
    client_port: int = 0
    auth: str = "token"


@dataclass(frozen=True)
class ServeApp:
    name: str
    import_path: str
    route_prefix: str
    args: dict = field(default_factory=dict)
    runtime_env: dict = field(default_factory=dict)
    deployments: tuple = ()
    health_path: str | None = None

    def serve_config(self) -> dict:
        """This app as an entry of the Serve REST API's ``applications`` list."""
        out: dict[str, Any] = {"name": self.name, "import_path": self.import_path,
                               "route_prefix": self.route_prefix}
        if self.args:
            out["args"] = self.args
        if self.runtime_env:
            out["runtime_env"] = self.runtime_env
        if self.deployments:
            out["deployments"] = [dict(d) for d in self.deployments]
        return out


@dataclass(frozen=True)
class ManagementApiConfig:
    """The management API deployed on the cluster as a Serve app (serve.management_api)."""
    enabled: bool = True
    name: str = "management-api"
    route_prefix: str = "/"
    num_cpus: float = 0.1
    memory: float | None = None  # GB


@dataclass(frozen=True)
class ApprovalsConfig:
    ttl_seconds: float = 24 * 3600
    wait_timeout_seconds: float = 3600
    required: tuple = ()
    forbid_self_approval: bool = False


@dataclass(frozen=True)
class CMLConfig:
    host: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    project_name: str | None = None
    project_id: str | None = None
    git_url: str | None = None
    runtime_identifier: str | None = None
    project_timeout_seconds: float = 900
    shared_host_network: bool = False  # true when every app runs on one host (the simulator)


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple = ()
    tokens_file: str | None = None


@dataclass(frozen=True)
class Config:
    cluster_name: str
    platform: str
    state_dir: Path
    project_dir: Path
    jobs_config: Path
    ray: RayConfig
    head: NodeResources
    workers: WorkersConfig
    serve_apps: tuple
    management_api: ManagementApiConfig
    approvals: ApprovalsConfig
    cml: CMLConfig
    api: ApiConfig
    force_rebuild: bool = False
    source: str = "config"  # the file it came from, absolute when loaded from a file
    base_dir: Path = Path(".")  # relative paths in the file were resolved against this
    warnings: tuple = ()

    def with_changes(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


# -- schemas ----------------------------------------------------------------------------------
class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ResourcesSchema(_Strict):
    cpu = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=1024))
    memory = fields.Float(load_default=2.0, validate=validate.Range(min=0.25, max=4096),
                          metadata={"description": "GB"})
    gpus = fields.Integer(load_default=0, validate=validate.Range(min=0, max=64))
    object_store_memory = fields.Float(load_default=None, allow_none=True,
                                       validate=validate.Range(min=0.08, max=4096))

    @validates_schema
    def _object_store_fits(self, data, **kwargs):
        osm = data.get("object_store_memory")
        if osm is not None and osm >= data.get("memory", 2.0):
            raise ValidationError("Must be less than memory.", "object_store_memory")


class WorkersSchema(ResourcesSchema):
    count = fields.Integer(load_default=2, validate=validate.Range(min=0, max=200))


class RaySchema(_Strict):
    version = fields.String(load_default=None, allow_none=True)
    port = Port(load_default=0)
    dashboard_port = Port(load_default=0)
    serve_port = Port(load_default=0)
    client_port = Port(load_default=0)
    auth = fields.String(load_default="token", validate=validate.OneOf(["token", "none"]))


class DeploymentOverrideSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # passed through to Serve, which validates the rest

    name = fields.String(required=True)


# The rules of a Serve app's identity, shared by the config file and the REST API.
APP_NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
                           error="Letters, digits, '-' and '_' only.")
IMPORT_PATH = validate.Regexp(IMPORT_PATH_RE, error="Must look like 'package.module:attribute'.")
ROUTE_PREFIX = validate.Regexp(r"^/[\w\-./]*$", error="Must start with '/'.")


class ServeAppSchema(_Strict):
    name = fields.String(required=True, validate=APP_NAME)
    import_path = fields.String(required=True, validate=IMPORT_PATH)
    route_prefix = fields.String(required=True, validate=ROUTE_PREFIX)
    args = fields.Dict(load_default=dict)
    runtime_env = fields.Dict(load_default=dict)
    deployments = fields.List(fields.Dict(), load_default=list)
    health_path = fields.String(load_default=None, allow_none=True)


class ManagementApiSchema(_Strict):
    enabled = fields.Boolean(load_default=True)
    name = fields.String(load_default="management-api", validate=APP_NAME)
    route_prefix = fields.String(load_default="/", validate=ROUTE_PREFIX)
    num_cpus = fields.Float(load_default=0.1, validate=validate.Range(min=0, max=64))
    memory = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.05),
                          metadata={"description": "GB reserved for the replica"})


class ServeSchema(_Strict):
    applications = fields.List(fields.Nested(ServeAppSchema), load_default=list)
    management_api = fields.Nested(ManagementApiSchema, load_default=None)

    @pre_load
    def _defaults(self, data, **kwargs):
        if isinstance(data, dict) and data.get("management_api") is None:
            data = {**data, "management_api": {}}
        return data

    @validates_schema
    def _unique(self, data, **kwargs):
        errors = {}
        mgmt = data.get("management_api") or {}
        for key in ("name", "route_prefix"):
            seen = {mgmt[key]} if mgmt.get("enabled") else set()
            for app in data.get("applications", []):
                if app[key] in seen:
                    errors.setdefault("applications", []).append(
                        f"Duplicate {key} {app[key]!r} (the management API's is "
                        f"{mgmt.get(key)!r}: change serve.management_api.{key}).")
                seen.add(app[key])
        if errors:
            raise ValidationError(errors)


class ApprovalsSchema(_Strict):
    ttl_seconds = fields.Float(load_default=24 * 3600, validate=validate.Range(min=1))
    wait_timeout_seconds = fields.Float(load_default=3600, validate=validate.Range(min=1))
    required = fields.List(fields.String(validate=validate.OneOf(CHECKPOINT_NAMES)),
                           load_default=list)
    forbid_self_approval = fields.Boolean(load_default=False)


class CMLSchema(_Strict):
    host = fields.Url(load_default=None, allow_none=True, require_tld=False)
    api_key = fields.String(load_default=None, allow_none=True)
    project_name = fields.String(load_default=None, allow_none=True)
    project_id = fields.String(load_default=None, allow_none=True)
    git_url = fields.String(load_default=None, allow_none=True)
    runtime_identifier = fields.String(load_default=None, allow_none=True)
    project_timeout_seconds = fields.Float(load_default=900, validate=validate.Range(min=1))
    shared_host_network = fields.Boolean(load_default=False)


class ApiSchema(_Strict):
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8080, validate=validate.Range(1, 65535))
    cors_origins = fields.List(fields.String(), load_default=list)
    tokens_file = fields.String(load_default=None, allow_none=True)


class ConfigSchema(_Strict):
    cluster_name = fields.String(load_default="ray-local", validate=validate.Regexp(
        NAME_RE, error="Lowercase letters, digits and '-' only."))
    platform = fields.String(load_default="local", validate=validate.OneOf(["local", "cml"]))
    state_dir = fields.String(load_default=".raydeploy")
    project_dir = fields.String(load_default=".")
    jobs_config = fields.String(load_default="jobs_config.yaml")
    force_rebuild = fields.Boolean(load_default=False)
    ray = fields.Nested(RaySchema, load_default=dict)
    head = fields.Nested(ResourcesSchema, load_default=dict)
    workers = fields.Nested(WorkersSchema, load_default=dict)
    serve = fields.Nested(ServeSchema, load_default=dict)
    approvals = fields.Nested(ApprovalsSchema, load_default=dict)
    cml = fields.Nested(CMLSchema, load_default=dict)
    api = fields.Nested(ApiSchema, load_default=dict)

    @pre_load
    def _sections(self, data, **kwargs):
        # A missing (or empty) section is loaded through its schema, so defaults apply.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("ray", "head", "workers", "serve", "approvals", "cml", "api"):
                if data.get(key) is None:
                    data[key] = {}
        return data

    @validates_schema
    def _platform_needs(self, data, **kwargs):
        if data.get("platform") == "cml":
            cml = data.get("cml") or {}
            errors = {k: ["Required when platform is cml."]
                      for k in ("host", "api_key") if not cml.get(k)}
            if errors:
                raise ValidationError({"cml": errors})


# -- older shapes and environment overrides --------------------------------------------------------
def _map_legacy(doc: dict) -> dict:
    """Map the ``cai:`` and ``ray_cluster:`` shapes users already have onto ours."""
    doc = copy.deepcopy(doc)
    if "cai" in doc:
        cai = doc.pop("cai") or {}
        if not isinstance(cai, dict):
            raise ConfigError({"cai": ["Must be a mapping."]})
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
            raise ConfigError(leftovers)
    if "ray_cluster" in doc:
        rc = doc.pop("ray_cluster") or {}
        mapping = {"num_workers": ("workers", "count"), "head_cpu": ("head", "cpu"),
                   "head_memory": ("head", "memory"), "worker_cpu": ("workers", "cpu"),
                   "worker_memory": ("workers", "memory"), "worker_gpus": ("workers", "gpus")}
        unknown = {f"ray_cluster.{k}": ["Unknown field."] for k in rc if k not in mapping}
        if unknown:
            raise ConfigError(unknown)
        for old, (section, key) in mapping.items():
            if old in rc:
                doc.setdefault(section, {})[key] = rc[old]
    return doc


ENV_OVERRIDES = {
    "CML_HOST": ("cml", "host"),
    "CML_API_KEY": ("cml", "api_key"),
    "RAY_NUM_WORKERS": ("workers", "count"),
    "RAY_WORKER_GPUS": ("workers", "gpus"),
    "RUNTIME_IDENTIFIER": ("cml", "runtime_identifier"),
    "FORCE_REBUILD": (None, "force_rebuild"),
}


def _apply_env(doc: dict, environ) -> dict[str, str]:
    """Apply overrides in place; returns {dotted field: env var} to name them in errors."""
    origins = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value is None or value == "":
            continue
        target = doc if section is None else doc.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        target[key] = value
        origins[f"{section}.{key}" if section else key] = var
    return origins


def _flatten(messages, prefix="") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(config)"
            for p, msgs in _flatten(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "(config)"] = list(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.update(_flatten(value, f"{prefix}.{i}"))
    else:
        out[prefix or "(config)"] = [str(messages)]
    return out


def parse_config(doc: Any, *, source: str = "config", environ=None,
                 state_dir_override: str | None = None, base_dir: Path | None = None) -> Config:
    environ = os.environ if environ is None else environ
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError({"(config)": ["The top level must be a mapping."]}, source)
    try:
        doc = _map_legacy(doc)
    except ConfigError as e:
        raise ConfigError(e.errors, source) from None
    origins = _apply_env(doc, environ)
    try:
        data = ConfigSchema().load(doc)
    except ValidationError as e:
        errors = _flatten(e.messages)
        for path, var in origins.items():
            if path in errors:
                errors[f"{path} (from {var})"] = errors.pop(path)
        raise ConfigError(errors, source) from None

    warnings = []
    head = data["head"]
    if head.get("gpus"):
        warnings.append(f"head.gpus={head['gpus']} ignored: the head node always gets 0 GPUs")
    base = base_dir or Path.cwd()
    resolve = lambda p: (Path(p) if Path(p).is_absolute() else base / p).resolve()  # noqa: E731
    cors = tuple(data["api"]["cors_origins"])
    return Config(
        cluster_name=data["cluster_name"],
        platform=data["platform"],
        state_dir=resolve(state_dir_override or data["state_dir"]),
        project_dir=resolve(data["project_dir"]),
        jobs_config=resolve(data["jobs_config"]),
        ray=RayConfig(**data["ray"]),
        head=NodeResources(cpu=head["cpu"], memory=head["memory"], gpus=0,
                           object_store_memory=head["object_store_memory"]),
        workers=WorkersConfig(**data["workers"]),
        serve_apps=tuple(ServeApp(**{**a, "deployments": tuple(a["deployments"])})
                         for a in data["serve"]["applications"]),
        management_api=ManagementApiConfig(**data["serve"]["management_api"]),
        approvals=ApprovalsConfig(
            ttl_seconds=data["approvals"]["ttl_seconds"],
            wait_timeout_seconds=data["approvals"]["wait_timeout_seconds"],
            required=tuple(data["approvals"]["required"]),
            forbid_self_approval=data["approvals"]["forbid_self_approval"]),
        cml=CMLConfig(**data["cml"]),
        api=ApiConfig(**{**data["api"], "cors_origins": cors,
                         "tokens_file": str(resolve(data["api"]["tokens_file"]))
                         if data["api"]["tokens_file"] else None}),
        force_rebuild=data["force_rebuild"],
        source=source,
        base_dir=base.resolve(),
        warnings=tuple(warnings),
    )


def load_config(path: str | Path | None = None, *, environ=None,
                state_dir_override: str | None = None, base_dir: Path | None = None) -> Config:
    """Load and validate a config file (the local example when ``path`` is None)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.exists():
        raise ConfigError({"(file)": [f"{path} does not exist"]}, str(path))
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError({"(yaml)": [f"{where}{getattr(e, 'problem', None) or e}"]},
                          str(path)) from None
    return parse_config(doc, source=str(path.resolve()), environ=environ,
                        state_dir_override=state_dir_override,
                        base_dir=Path(base_dir) if base_dir else None)

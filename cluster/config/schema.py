"""The config's marshmallow schemas. Every field error is collected at once; the sections
of the registered platforms are added from the registry (each platform owns its schema)."""
from __future__ import annotations

import ipaddress
from typing import ClassVar

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from cluster.config import model
from cluster.config.model import NOTIFICATION_EVENTS, OPERATION_POLICY
from cluster.platforms import DEFAULT, REGISTRY
from cluster.serve_routes import describe_taken, management_paths_taken, normalized
from core.facts import CHECKPOINT_ORDER, TEARDOWN
from core.records import ApprovalPolicy

NAME_RE = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
IMPORT_PATH_RE = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"

# The rules of a Serve app's identity, shared by the config file and the REST API.
APP_NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
                           error="Letters, digits, '-' and '_' only.")
IMPORT_PATH = validate.Regexp(IMPORT_PATH_RE, error="Must look like 'package.module:attribute'.")
ROUTE_PREFIX = validate.Regexp(r"^/[\w\-./]*$", error="Must start with '/'.")


def _port(value: int) -> None:
    if value != 0 and not 1024 <= value <= 65535:
        raise ValidationError("Must be 0 (pick a free port) or between 1024 and 65535.")


def Port(**kw) -> fields.Integer:  # noqa: N802 - a field factory reads like a field class
    return fields.Integer(validate=_port, **kw)


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Section(Strict):
    """A schema that loads into its dataclass (``into``): lists become tuples; ``adjust``
    may fill what depends on other fields first."""
    into: ClassVar[type]

    def adjust(self, data: dict) -> dict:
        return data

    @post_load
    def _into(self, data, **kwargs):
        data = self.adjust(data)
        return self.into(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class ResourcesSchema(Section):
    into = model.NodeResources

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
    into = model.WorkersConfig
    # CML launches hundreds of worker apps within its rate limit (one pod each); nodes that
    # share one host run out of worker port blocks far sooner (see cluster/ports.py)
    count = fields.Integer(load_default=2, validate=validate.Range(min=0, max=1000))
    drain_timeout_seconds = fields.Float(load_default=60, validate=validate.Range(min=1, max=3600))


class RaySchema(Section):
    into = model.RayConfig
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


class ServeAppSchema(Section):
    into = model.ServeApp
    name = fields.String(required=True, validate=APP_NAME)
    import_path = fields.String(required=True, validate=IMPORT_PATH)
    route_prefix = fields.String(required=True, validate=ROUTE_PREFIX)
    args = fields.Dict(load_default=dict)
    runtime_env = fields.Dict(load_default=dict)
    deployments = fields.List(fields.Dict(), load_default=list)
    health_path = fields.String(load_default=None, allow_none=True)


class ManagementApiSchema(Section):
    into = model.ManagementApiConfig
    enabled = fields.Boolean(load_default=True)
    name = fields.String(load_default="management-api", validate=APP_NAME)
    route_prefix = fields.String(load_default="/", validate=ROUTE_PREFIX)
    num_cpus = fields.Float(load_default=0.1, validate=validate.Range(min=0, max=64))
    memory = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.05),
                          metadata={"description": "GB reserved for the replica"})


RUNTIME_ENV_KEYS = ("env_vars", "working_dir", "py_modules", "pip", "uv", "conda",
                    "py_executable", "excludes", "config", "image_uri", "container")


class ServeSchema(Section):
    into = model.ServeConfig
    applications = fields.List(fields.Nested(ServeAppSchema), load_default=list)
    management_api = fields.Nested(ManagementApiSchema, load_default=None)
    allowed_import_prefixes = fields.List(fields.String(validate=validate.Regexp(
        r"^[A-Za-z_][\w.]*$", error="A module prefix, like 'myapps' or 'myapps.serve'.")),
        load_default=list)
    stuck_replica_seconds = fields.Float(load_default=120, validate=validate.Range(min=1))
    verify_timeout_seconds = fields.Float(load_default=60, validate=validate.Range(min=1))
    allowed_runtime_env_keys = fields.List(fields.String(validate=validate.OneOf(
        RUNTIME_ENV_KEYS)), load_default=lambda: ["env_vars", "working_dir"])
    allowed_env_vars = fields.List(fields.String(validate=validate.Regexp(
        r"^[A-Za-z0-9_*?\[\]!]{1,128}$", error="A variable name or a shell pattern of one, "
                                               "like 'APP_*'.")), load_default=lambda: ["APP_*"])

    @pre_load
    def _defaults(self, data, **kwargs):
        if isinstance(data, dict) and data.get("management_api") is None:
            data = {**data, "management_api": {}}
        return data

    def adjust(self, data: dict) -> dict:
        if not data["allowed_import_prefixes"]:  # default: the packages of the configured apps
            data["allowed_import_prefixes"] = sorted({
                a.import_path.split(".")[0].split(":")[0] for a in data["applications"]})
        return data

    @validates_schema
    def _unique(self, data, **kwargs):
        errors = {}
        mgmt = data.get("management_api") or model.ManagementApiConfig(enabled=False)
        for key in ("name", "route_prefix"):
            seen = {getattr(mgmt, key)} if mgmt.enabled else set()
            for app in data.get("applications", []):
                if getattr(app, key) in seen:
                    errors.setdefault("applications", []).append(
                        f"Duplicate {key} {getattr(app, key)!r} (the management API's is "
                        f"{getattr(mgmt, key)!r}: change serve.management_api.{key}).")
                seen.add(getattr(app, key))
        if errors:
            raise ValidationError(errors)

    @validates_schema
    def _clear_of_the_management_api(self, data, **kwargs):
        """An app at a prefix inside the management API's routes would answer its requests
        (Serve routes a request to the longest matching prefix)."""
        mgmt = data.get("management_api")
        if mgmt is None or not mgmt.enabled:
            return
        errors = {}
        for i, app in enumerate(data.get("applications", [])):
            if normalized(app.route_prefix) == normalized(mgmt.route_prefix):
                continue  # the same prefix: _unique says so
            taken = management_paths_taken(app.route_prefix, mgmt.route_prefix)
            if taken:
                errors[i] = {"route_prefix": [
                    f"Takes the management API's {describe_taken(taken)} (Serve routes a "
                    f"request to the longest matching prefix): choose a prefix outside its "
                    f"routes, or move the API (serve.management_api.route_prefix)."]}
        if errors:
            raise ValidationError({"applications": errors})


class ApprovalPolicySchema(Section):
    into = ApprovalPolicy
    min_approvals = fields.Integer(load_default=1, validate=validate.Range(1, 10))
    distinct = fields.Boolean(load_default=True)
    exclude_requester = fields.Boolean(load_default=False)
    roles = fields.List(fields.String(validate=validate.OneOf(["viewer", "operator", "approver"])),
                        load_default=lambda: ["approver"], validate=validate.Length(min=1))


GATE_NAMES = (*CHECKPOINT_ORDER, TEARDOWN, *OPERATION_POLICY)


class ApprovalsSchema(Section):
    into = model.ApprovalsConfig
    ttl_seconds = fields.Float(load_default=24 * 3600, validate=validate.Range(min=1))
    wait_timeout_seconds = fields.Float(load_default=3600, validate=validate.Range(min=1))
    required = fields.List(fields.String(validate=validate.OneOf(CHECKPOINT_ORDER)),
                           load_default=list)
    forbid_self_approval = fields.Boolean(load_default=False)
    operations = fields.Dict(keys=fields.String(validate=validate.OneOf(OPERATION_POLICY)),
                             values=fields.String(validate=validate.OneOf(["none", "approval"])),
                             load_default=dict)
    # per gate: how many approvals, from whom (e.g. teardown: {min_approvals: 2})
    policy = fields.Dict(keys=fields.String(validate=validate.OneOf(GATE_NAMES)),
                         values=fields.Nested(ApprovalPolicySchema), load_default=dict)
    # a directory where a file checkpoint-NAME-approved holding the plan's fingerprint approves
    file_dir = fields.String(load_default=None, allow_none=True)

    def adjust(self, data: dict) -> dict:
        return {**data, "operations": {**OPERATION_POLICY, **data["operations"]}}


def _network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError("An IP address or network (10.0.0.0/8), not a name.") from None


def _origin(value: str) -> None:
    if value.strip() == "*":
        raise ValidationError("'*' would let any web page call this API from a browser: "
                              "list the origins of your UIs.")


class ApiSchema(Section):
    into = model.ApiConfig
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8080, validate=validate.Range(1, 65535))
    cors_origins = fields.List(fields.String(validate=_origin), load_default=list)
    tokens_file = fields.String(load_default=None, allow_none=True)
    allowed_hosts = fields.List(fields.String(validate=validate.Regexp(
        r"^[A-Za-z0-9.\-\[\]:]+$", error="A host name or address, without a scheme.")),
        load_default=list)
    max_body_bytes = fields.Integer(load_default=1024 * 1024,
                                    validate=validate.Range(1024, 64 * 1024 * 1024))
    sse_per_principal = fields.Integer(load_default=4, validate=validate.Range(1, 64))
    sse_max_seconds = fields.Float(load_default=300, validate=validate.Range(5, 86400))
    metrics_public = fields.Boolean(load_default=False)
    trusted_proxies = fields.List(fields.String(validate=_network), load_default=list)


class NotificationTargetSchema(Section):
    into = model.NotificationTarget
    name = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", error="Letters, digits, '.', '_', '-'."))
    type = fields.String(required=True, validate=validate.OneOf(["webhook", "slack"]))
    url = fields.String(load_default=None, allow_none=True, validate=validate.URL(
        schemes={"http", "https"}, require_tld=False))
    url_env = fields.String(load_default=None, allow_none=True)
    url_file = fields.String(load_default=None, allow_none=True)
    secret_env = fields.String(load_default=None, allow_none=True)
    secret_file = fields.String(load_default=None, allow_none=True)
    events = fields.List(fields.String(validate=validate.OneOf(NOTIFICATION_EVENTS)),
                         load_default=lambda: list(NOTIFICATION_EVENTS),
                         validate=validate.Length(min=1))

    @validates_schema
    def _sources(self, data, **kwargs):
        sources = [k for k in ("url", "url_env", "url_file") if data.get(k)]
        if len(sources) != 1:
            raise ValidationError("give exactly one of url, url_env, url_file", "url")
        if data["type"] == "slack" and data.get("url"):
            raise ValidationError("a Slack webhook URL is a secret: use url_env or url_file",
                                  "url")
        if data["type"] == "webhook" and not (data.get("secret_env") or data.get("secret_file")):
            raise ValidationError("a webhook is signed: give secret_env or secret_file",
                                  "secret_env")


class NotificationsSchema(Section):
    into = model.NotificationsConfig
    targets = fields.List(fields.Nested(NotificationTargetSchema), load_default=list)
    public_url = fields.String(load_default=None, allow_none=True, validate=validate.URL(
        schemes={"http", "https"}, require_tld=False))
    expiring_lead_seconds = fields.Float(load_default=300, validate=validate.Range(min=1))
    max_attempts = fields.Integer(load_default=5, validate=validate.Range(1, 20))

    @validates_schema
    def _unique(self, data, **kwargs):
        names = [t.name for t in data.get("targets") or []]
        if len(names) != len(set(names)):
            raise ValidationError("target names must be unique", "targets")


class MonitoringSchema(Section):
    into = model.MonitoringConfig
    enabled = fields.Boolean(load_default=False)
    scrape_interval_seconds = fields.Float(load_default=10, validate=validate.Range(1, 3600))
    retention = fields.String(load_default="1d", validate=validate.Regexp(
        r"^[0-9]+(ms|s|m|h|d|w|y)$", error="A Prometheus duration, e.g. 1d or 12h."))
    port = fields.Integer(load_default=0, validate=validate.Range(0, 65535))
    cpu = fields.Float(load_default=0.5, validate=validate.Range(0.1, 64))
    memory = fields.Float(load_default=1, validate=validate.Range(0.25, 512))
    api_targets = fields.List(fields.String(validate=validate.Regexp(
        r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$", error="host:port")), load_default=list)
    api_token_file = fields.String(load_default=None, allow_none=True)


SECTIONS = ("ray", "head", "workers", "serve", "approvals", "api", "monitoring",
            "notifications")
PLATFORM_SECTIONS = {p.settings_section: p for p in REGISTRY.values() if p.settings_section}


class BaseConfigSchema(Strict):
    cluster_name = fields.String(load_default="ray-local", validate=validate.Regexp(
        NAME_RE, error="Lowercase letters, digits and '-' only."))
    platform = fields.String(load_default=DEFAULT, validate=validate.OneOf(sorted(REGISTRY)))
    state_dir = fields.String(load_default=".raydeploy")
    project_dir = fields.String(load_default=".")
    jobs_config = fields.String(load_default="jobs_config.yaml")
    force_rebuild = fields.Boolean(load_default=False)
    ray = fields.Nested(RaySchema, load_default=dict)
    head = fields.Nested(ResourcesSchema, load_default=dict)
    workers = fields.Nested(WorkersSchema, load_default=dict)
    serve = fields.Nested(ServeSchema, load_default=dict)
    approvals = fields.Nested(ApprovalsSchema, load_default=dict)
    api = fields.Nested(ApiSchema, load_default=dict)
    monitoring = fields.Nested(MonitoringSchema, load_default=dict)
    notifications = fields.Nested(NotificationsSchema, load_default=dict)

    @pre_load
    def _sections(self, data, **kwargs):
        # A missing (or empty) section is loaded through its schema, so defaults apply.
        if isinstance(data, dict):
            data = dict(data)
            for key in (*SECTIONS, *PLATFORM_SECTIONS):
                if data.get(key) is None:
                    data[key] = {}
        return data

    @validates_schema
    def _platform_needs(self, data, **kwargs):
        platform = REGISTRY.get(data.get("platform"))
        if platform is not None and platform.settings_section:
            errors = platform.required_when_selected(data.get(platform.settings_section) or {})
            if errors:
                raise ValidationError({platform.settings_section: errors})


# Each platform's section is a nested field named after it (``cml:``, ...).
ConfigSchema = type("ConfigSchema", (BaseConfigSchema,), {
    section: fields.Nested(platform.settings_schema, load_default=dict)
    for section, platform in PLATFORM_SECTIONS.items()})

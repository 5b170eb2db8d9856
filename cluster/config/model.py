"""The validated config as typed, frozen objects (what every layer reads).

Each section is one dataclass, built by its schema (``cluster/config/schema.py``: a
``Section`` names its dataclass), so a new key is one schema field and one dataclass field.
A field that names a file or directory says so (``PATH``): it is resolved against the
config file's directory when the config is loaded."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PATH = {"path": True}  # field metadata: a path, resolved against the config's directory


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
    # removing a worker: how long to wait for Serve to run its replicas elsewhere
    drain_timeout_seconds: float = 60


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


# What the API's node and app operations need before they act: "approval" (a gate, destructive
# when the plan removes or replaces something running) or "none".
OPERATION_POLICY = {"node_add": "none", "node_remove": "approval", "app_deploy": "none",
                    "app_replace": "approval", "app_delete": "approval"}


@dataclass(frozen=True)
class ApprovalsConfig:
    ttl_seconds: float = 24 * 3600
    wait_timeout_seconds: float = 3600
    required: tuple = ()
    forbid_self_approval: bool = False
    operations: dict = field(default_factory=lambda: dict(OPERATION_POLICY))
    policy: dict = field(default_factory=dict)  # gate name -> checkpoints.plan.ApprovalPolicy
    # approvals given as files (checkpoints/file_approvals.py)
    file_dir: str | None = field(default=None, metadata=PATH)


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple = ()
    tokens_file: str | None = field(default=None, metadata=PATH)
    # Host headers the API answers to (DNS rebinding); loopback names and the bind are added
    allowed_hosts: tuple = ()
    max_body_bytes: int = 1024 * 1024
    sse_per_principal: int = 4  # open event streams per principal, per server process
    sse_max_seconds: float = 300  # then the stream ends; clients reconnect with Last-Event-ID
    metrics_public: bool = False  # /metrics without a token (else the viewer role)
    # reverse proxies in front (addresses or networks) whose X-Forwarded-For says who calls
    trusted_proxies: tuple = ()


NOTIFICATION_EVENTS = ("approval.required", "approval.granted", "approval.rejected",
                       "approval.expiring", "run.succeeded", "run.failed")


@dataclass(frozen=True)
class NotificationTarget:
    """Where events go: a signed JSON webhook or a Slack-compatible incoming webhook. URLs and
    secrets may come from the environment or a file, so the config holds no secret."""
    name: str
    type: str  # webhook | slack
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = field(default=None, metadata=PATH)
    secret_env: str | None = None  # webhook: the HMAC-SHA256 key
    secret_file: str | None = field(default=None, metadata=PATH)
    events: tuple = NOTIFICATION_EVENTS


@dataclass(frozen=True)
class NotificationsConfig:
    targets: tuple = ()
    public_url: str | None = None  # the API's address as approvers reach it (inbox links)
    expiring_lead_seconds: float = 300  # approval.expiring this long before a gate times out
    max_attempts: int = 5


@dataclass(frozen=True)
class MonitoringConfig:
    """Prometheus started by the deploy (the ``monitoring`` checkpoint), scraping every Ray
    node (Ray's own service-discovery file) and the control plane's /metrics."""
    enabled: bool = False
    scrape_interval_seconds: float = 10
    retention: str = "1d"
    port: int = 0  # 0: the first free one from 9090
    cpu: float = 0.5
    memory: float = 1
    # API servers to scrape besides the cluster's management API ("host:port" each)
    api_targets: tuple = ()
    # a file holding a viewer token, when the scraped APIs require one
    api_token_file: str | None = field(default=None, metadata=PATH)


@dataclass(frozen=True)
class ServeConfig:
    """The ``serve`` section: the apps a deploy keeps running, the management API, what the
    API may deploy (the config file's own apps are trusted as they are: the ``allowed_*``
    fields are the policy ``cluster/serve_policy.py`` checks) and how long Serve is waited."""
    applications: tuple = ()  # ServeApp
    management_api: ManagementApiConfig = field(default_factory=ManagementApiConfig)
    allowed_import_prefixes: tuple = ()  # default: the packages of the configured apps
    allowed_runtime_env_keys: tuple = ("env_vars", "working_dir")
    # runtime_env.env_vars names the API accepts (shell patterns): an allow-list
    allowed_env_vars: tuple = ("APP_*",)
    stuck_replica_seconds: float = 120  # a replica not RUNNING after this long fails validation
    verify_timeout_seconds: float = 60  # how long verify waits for apps that served to serve again


@dataclass(frozen=True)
class Config:
    cluster_name: str
    platform: str
    state_dir: Path = field(metadata=PATH)
    project_dir: Path = field(metadata=PATH)
    jobs_config: Path = field(metadata=PATH)
    ray: RayConfig
    head: NodeResources
    workers: WorkersConfig
    serve: ServeConfig
    approvals: ApprovalsConfig
    api: ApiConfig
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    # every registered platform's section, by section name (a platform reads its own)
    platform_settings: Mapping[str, Any] = field(default_factory=dict)
    force_rebuild: bool = False
    source: str = "config"  # the file it came from, absolute when loaded from a file
    base_dir: Path = Path(".")  # relative paths in the file were resolved against this
    warnings: tuple = ()
    # the document it was loaded from (older shapes mapped, environment applied): holds
    # secrets as written (cml.api_key), so it is only ever re-parsed, never shown
    document: dict = field(default_factory=dict, repr=False, compare=False)

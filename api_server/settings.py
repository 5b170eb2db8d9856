"""Server settings, read from the environment once (tests pass their own)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from cluster.platforms import published_port


@dataclass
class Settings:
    config_path: str | None = None  # the deploy config (default: examples/cluster.local.yaml)
    state_dir: str | None = None  # overrides the config's state_dir
    base_dir: str | None = None  # what relative config paths are relative to (default: cwd)
    host: str | None = None  # default: the config's api.host (127.0.0.1)
    port: int | None = None  # default: the config's api.port (8080)
    # "principal:role[+role]:token,..." (or api.tokens_file): never in a repr
    tokens: str | None = field(default=None, repr=False)
    status_cache_seconds: float = 1.0  # how stale live cluster answers may be
    # how stale a checkpoint's plan (and the whole run's) may be for readers: planning asks
    # the platform (on CML: within its rate limit), so readers never plan on every GET
    plan_cache_seconds: float = 10.0
    # event streams (SSE) open at once in this process: each holds a thread (gunicorn's
    # config sets half its threads; the threaded dev server has a thread per connection)
    sse_process_limit: int = 16
    # RAY_ADDRESS: the Ray cluster the views read (nodes, apps, status, health) instead of
    # the head the platform lists; RAY_AUTH_TOKEN: its token, when not the config's own
    ray_address: str | None = None
    ray_auth_token: str | None = field(default=None, repr=False)
    # the control plane (RAYDEPLOY_CONTROL_PLANE=1, --control-plane): this process owns the
    # store, runs the runs, and continues the one it ran when it (re)starts
    control_plane: bool = False
    # the port is one a platform publishes (inside one of its apps: Platform.published_port),
    # so even a loopback bind is public: tokens are required. The variable that said so.
    published_by: str | None = None
    # where this server answers, as the cluster reaches it (RAYDEPLOY_PUBLIC_URL; the dev
    # server and gunicorn set it from their bind): the cluster's management API forwards there
    public_url: str | None = None
    environ: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ=None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        published = published_port(env)  # the platform's port wins: it is where we are reached
        own = env.get("RAYDEPLOY_API_PORT", "")
        port = published[0] if published else (int(own) if own.isdigit() else None)
        return cls(config_path=env.get("RAYDEPLOY_CONFIG"), state_dir=env.get("RAYDEPLOY_STATE_DIR"),
                   base_dir=env.get("RAYDEPLOY_BASE_DIR"),
                   host=env.get("RAYDEPLOY_API_HOST"), port=port,
                   tokens=env.get("RAYDEPLOY_API_TOKENS"),
                   status_cache_seconds=float(env.get("RAYDEPLOY_STATUS_CACHE_SECONDS", "1.0")),
                   plan_cache_seconds=float(env.get("RAYDEPLOY_PLAN_CACHE_SECONDS", "10")),
                   sse_process_limit=int(env.get("RAYDEPLOY_SSE_LIMIT", "16")),
                   ray_address=env.get("RAY_ADDRESS") or None,
                   ray_auth_token=env.get("RAY_AUTH_TOKEN") or None,
                   control_plane=env.get("RAYDEPLOY_CONTROL_PLANE") == "1",
                   published_by=published[1] if published else None,
                   public_url=env.get("RAYDEPLOY_PUBLIC_URL") or None, environ=env)

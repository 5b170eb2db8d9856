"""gunicorn settings: bind RAYDEPLOY_API_HOST and the port a platform publishes for this app
(``Platform.published_port``), else RAYDEPLOY_API_PORT (default 127.0.0.1:8080).

Threads, not many processes: runs started through the API execute on a thread of the
process that accepted them, and the status cache is per process. Event streams (SSE) hold a
thread each, so at most half of a worker's threads serve them (RAYDEPLOY_SSE_LIMIT): the
others keep answering /health and the API."""
import os
import sys
import tempfile

# Every worker's metrics add up in /metrics (prometheus_client multiprocess mode): set before
# the app (and prometheus_client) is imported. A fresh directory per server start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="raydeploy-metrics-")

from api_server.settings import Settings  # noqa: E402 - after PROMETHEUS_MULTIPROC_DIR

_settings = Settings.from_env()  # the platform's published port, else RAYDEPLOY_API_PORT
bind = f"{_settings.host or '127.0.0.1'}:{_settings.port or 8080}"
os.environ.setdefault("RAYDEPLOY_PUBLIC_URL", f"http://{bind}")  # where the cluster reaches us
# The control plane is one process: it owns the store (its only writer), the lease, the runs
# and their threads; its threads serve the API meanwhile.
CONTROL_PLANE = os.environ.get("RAYDEPLOY_CONTROL_PLANE") == "1"
workers = 1 if CONTROL_PLANE else int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
os.environ.setdefault("RAYDEPLOY_SSE_LIMIT", str(max(1, threads // 2)))
worker_class = "gthread"
timeout = 300  # adding a node waits until it is ALIVE
accesslog = "-"
# never log the Authorization header (the default format does not; keep it that way)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'


def on_starting(server):
    """Refuse a non-loopback (or published) bind without tokens before any worker starts."""
    # (-w N and GUNICORN_CMD_ARGS outrank this file's `workers`: the arbiter's count is set
    # back here, before it spawns any worker)
    asked = max(server.num_workers, int(os.environ.get("GUNICORN_WORKERS", "1")))
    if CONTROL_PLANE and asked > 1:
        server.log.warning("control plane: one worker (it owns the store and runs the runs); "
                           "GUNICORN_WORKERS and -w are ignored")
        server.num_workers = 1
    from api_server import check_listener
    from api_server.settings import Settings
    from checkpoints.access import principals_for, require_identities
    from cluster.config import load_config
    from core.errors import DomainError
    settings = Settings.from_env()
    try:
        config = load_config(settings.config_path, state_dir_override=settings.state_dir,
                             base_dir=settings.base_dir)
        principals = principals_for(config)
        require_identities(config, principals)
        for address in server.cfg.bind:
            check_listener(address.rsplit(":", 1)[0], principals.enabled, settings.published_by)
    except DomainError as e:
        server.log.error("error: %s", e)
        sys.exit(2)


def child_exit(server, worker):
    """A worker that ended: its live gauges leave the combined view."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)

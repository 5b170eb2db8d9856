"""What the CLI prints: lines (control characters escaped) and run progress."""
from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

from core.facts import Outcome
from core.text import printable_lines

# the exit codes of every command, embedded or through a control plane
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AWAITING, EXIT_REJECTED = 0, 1, 2, 3, 4

STATUS_EVERY = 10.0


def say(text: str = "", err: bool = False) -> None:
    print(printable_lines(text), file=sys.stderr if err else sys.stdout, flush=True)


def say_config_warnings(config) -> None:
    """What the config loader chose or ignored for the user (a default an older shape implies,
    a head GPU count dropped), once per command that acts on the config."""
    for warning in config.warnings:
        say(f"warning: {warning}")


def ray_command() -> str:
    """How this machine's user runs ``ray``: the one beside this interpreter (the Ray this
    tool deploys; by its full path, so it works from the user's own directory), else PATH's."""
    beside = Path(sys.executable).parent / "ray"
    return shlex.quote(str(beside)) if beside.exists() or not shutil.which("ray") else "ray"


def cluster_usage(info: dict, config, token_path: str | None, where: str | None = None) -> dict:
    """How a Ray user uses the cluster (``info``: see ``say_endpoints``): a job (the
    dependable way), the Ray Client, and where the cluster's token is (never the token).
    ``where``: where the addresses are reachable from, when not from this machine."""
    dashboard = info.get("dashboard_url")
    if not dashboard:
        return {}
    token = config.ray.auth == "token"
    env = (f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="
           f"{shlex.quote(token_path) if token_path else '<its ray_token file>'} " if token else "")
    return {"jobs_address": dashboard, "token_path": token_path if token else None,
            "job_submit": f"{env}{ray_command()} job submit --address {dashboard} "
                          f"--working-dir . -- python my_script.py",
            "client_address": info.get("client_address"), "reachable_from": where}


def status_document(config, run: dict | None, nodes: list[dict], info: dict,
                    usage: dict) -> dict:
    """``--status --format json``, in embedded and client mode alike."""
    return {"cluster_name": config.cluster_name, "platform": config.platform, "last_run": run,
            "nodes": nodes, "endpoints": info, "usage": usage}


def say_endpoints(info: dict, config, usage: dict | None = None) -> None:
    """Where the cluster answers (``ClusterManager.info``, or a control plane's
    /api/v1/cluster/info), with the config's own apps, and how to use it (``cluster_usage``)."""
    if not info.get("head_address") and not info.get("dashboard_url"):
        return
    say(f"  head address : {info.get('head_address')}")
    say(f"  dashboard    : {info.get('dashboard_url')}")
    outside = info.get("head_url")
    for app in config.serve.applications:
        if outside:  # the pods' addresses are for the platform's own network
            say(f"  app {app.name:<9}: {outside}{app.route_prefix}  (the platform's login; "
                f"inside: {info.get('serve_url')}{app.route_prefix})")
        else:
            say(f"  app {app.name:<9}: {info.get('serve_url')}{app.route_prefix}")
    if config.serve.management_api.enabled and info.get("management_api_url"):
        say(f"  management API: {info['management_api_url']}  (docs: /docs)")
    if config.monitoring.enabled:
        say(f"  prometheus   : {info.get('prometheus_url')}  (Grafana dashboards: "
            f"{config.state_dir / 'grafana'})")
    if usage:
        say("using the cluster" + (f" (from {usage['reachable_from']})"
                                   if usage.get("reachable_from") else "") + ":")
        say(f"  a Ray job    : {usage['job_submit']}")
        if usage.get("client_address"):
            auth = " (the same RAY_AUTH_* variables set)" if usage.get("token_path") else ""
            say(f"  Ray Client   : ray.init(\"{usage['client_address']}\"){auth}; jobs are the "
                f"dependable way (README: Using the cluster)")


class LineReporter:
    """One line per checkpoint outcome, and a status line at least every 10 s while waiting."""

    def __init__(self):
        self.last_output = time.monotonic()
        self.prefix = ""

    def checkpoint_started(self, name, index, total):
        self.prefix = f"[{index}/{total}] {name}"
        self.last_output = time.monotonic()

    def checkpoint_finished(self, name, outcome, seconds, detail=""):
        outcome = Outcome(outcome)
        line = f"{self.prefix:<32} {outcome.label} ({seconds:.2f}s)"
        if detail and outcome in (Outcome.FAILED, Outcome.REJECTED, Outcome.CANCELLED):
            line += "".join(f"\n    {part}" for part in detail.splitlines())
        say(line)
        self.last_output = time.monotonic()

    def waiting(self, message):
        if time.monotonic() - self.last_output >= STATUS_EVERY:
            say(f"    ... {message}")
            self.last_output = time.monotonic()

    def message(self, text):
        say(f"    {text}")
        self.last_output = time.monotonic()

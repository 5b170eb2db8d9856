"""What the CLI prints: lines (control characters escaped) and run progress."""
from __future__ import annotations

import sys
import time

from core.facts import Outcome
from core.text import printable_lines

STATUS_EVERY = 10.0


def say(text: str = "", err: bool = False) -> None:
    print(printable_lines(text), file=sys.stderr if err else sys.stdout, flush=True)


def say_config_warnings(config) -> None:
    """What the config loader chose or ignored for the user (a default an older shape implies,
    a head GPU count dropped), once per command that acts on the config."""
    for warning in config.warnings:
        say(f"warning: {warning}")


def say_endpoints(info: dict, config) -> None:
    """Where the cluster answers (``ClusterManager.info``, or a control plane's
    /api/v1/cluster/info), with the config's own apps."""
    if not info.get("head_address") and not info.get("dashboard_url"):
        return
    say(f"  head address : {info.get('head_address')}")
    say(f"  dashboard    : {info.get('dashboard_url')}")
    for app in config.serve_apps:
        say(f"  app {app.name:<9}: {info.get('serve_url')}{app.route_prefix}")
    if config.management_api.enabled and info.get("management_api_url"):
        say(f"  management API: {info['management_api_url']}  (docs: /docs)")
    if config.monitoring.enabled:
        say(f"  prometheus   : {info.get('prometheus_url')}  (Grafana dashboards: "
            f"{config.state_dir / 'grafana'})")


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
            line += f"\n    {detail}".replace("\n", "\n    ")
        say(line)
        self.last_output = time.monotonic()

    def waiting(self, message):
        if time.monotonic() - self.last_output >= STATUS_EVERY:
            say(f"    ... {message}")
            self.last_output = time.monotonic()

    def message(self, text):
        say(f"    {text}")
        self.last_output = time.monotonic()

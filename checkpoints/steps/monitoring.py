"""7. monitoring: when ``monitoring.enabled``, the cluster's Prometheus runs as a platform app
and scrapes every Ray node (Ray's own service-discovery file, written by the head) and the
control plane's /metrics (the cluster's management API, plus ``monitoring.api_targets``).

Prometheus listens on the head's address at the layout's ``prometheus_port``, which the head
was started with (its dashboard's metrics pages ask it), so turning monitoring on later needs
no head restart. A changed setup (scrape config, resources) replaces the running Prometheus
(destructive: its scrapes stop for a moment; the data dir is kept). Ray's generated Grafana
dashboards are copied to ``<state_dir>/grafana``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from cluster.lifecycle import LAUNCHER
from cluster.monitoring import prometheus_url, scrape_targets, target_problems
from cluster.platforms.records import FAILED, LIVE, RUNNING, STOPPED, AppSpec
from cluster.prometheus import SD_FILE_NAME, PrometheusClient, render_config
from core.errors import DomainError
from core.timing import TimedOut, poll_until

CONFIG_FILE = "monitoring/prometheus.yml"
DATA_DIR = "monitoring/data"
START_TIMEOUT = 60
SETUP_KEY = "RAYDEPLOY_MONITORING_SETUP"  # the setup's digest, in the app's environment


def app_name(ctx: Context) -> str:
    return ctx.cluster.inventory.prometheus_name


def prometheus_apps(ctx: Context) -> list:
    """The cluster's Prometheus app(s) on the platform, whatever their status."""
    return [a for a in ctx.cluster.inventory.owned_apps() if a.spec.role == "prometheus"]


def prometheus_app(ctx: Context, live_only: bool = True):
    return next((a for a in prometheus_apps(ctx) if not live_only or a.status in LIVE), None)


def desired(ctx: Context) -> tuple[str, AppSpec] | None:
    """(prometheus.yml text, the app spec) for the live cluster; None without a head."""
    url = prometheus_url(ctx.cluster)
    if url is None:
        return None
    mon = ctx.config.monitoring
    sd_file = Path(ctx.cluster.lifecycle.head_temp_dir) / SD_FILE_NAME
    text = render_config(sd_file, scrape_targets(ctx.cluster), mon.scrape_interval_seconds,
                         cluster_label=ctx.config.cluster_name)
    listen = url.split("//", 1)[1]
    args = {"config": CONFIG_FILE, "data": DATA_DIR, "listen": listen, "retention": mon.retention}
    setup = hashlib.sha256((text + json.dumps(args, sort_keys=True)).encode()).hexdigest()[:16]
    spec = AppSpec(name=app_name(ctx), script=LAUNCHER, cpu=mon.cpu, memory=mon.memory,
                   gpus=0, tags=ctx.cluster.inventory.tags("prometheus"),
                   description=f"Prometheus of {ctx.config.cluster_name}",
                   env={"RAYDEPLOY_ROLE": "prometheus", SETUP_KEY: setup,
                        "RAYDEPLOY_PROMETHEUS_ARGS": json.dumps(args, sort_keys=True)})
    return text, spec


class Monitoring(Checkpoint):
    name = "monitoring"
    description = ("Prometheus (monitoring.enabled) scraping every Ray node and the control "
                   "plane's /metrics; Ray's Grafana dashboards copied to the state dir")
    gate_policy = "destructive approval when it replaces or removes a running Prometheus"
    may_be_destructive = True

    def plan(self, ctx: Context) -> Plan:
        return self.plan_for(ctx)

    def plan_for(self, ctx: Context, head_restarts: bool = False) -> Plan:
        """The plan now, or (``head_restarts``: a preview whose head_launch replaces the
        head, which stops Prometheus with every app) as it will be after that."""
        apps = [] if head_restarts else prometheus_apps(ctx)  # one platform listing
        app = next((a for a in apps if a.status in LIVE), None)
        stale = [a for a in apps if a.status in (FAILED, STOPPED)]
        actions = [Action(Kind.CLEANUP, "prometheus", a.name, {"status": a.status}) for a in stale]
        if not ctx.config.monitoring.enabled:
            if app is not None:
                actions.append(Action(Kind.DELETE, "prometheus", app.name,
                                      {"why": "monitoring.enabled is false"}))
            return Plan(self.name, tuple(actions), notes=("monitoring off (monitoring.enabled)",))
        want = None if head_restarts else desired(ctx)
        if want is None:  # no head yet: head_launch (earlier in the run) starts one
            return Plan(self.name, (*actions, self._create(ctx)),
                        notes=("prometheus will listen on the head's address",))
        _, spec = want
        url = prometheus_url(ctx.cluster)
        if app is None:
            actions.append(self._create(ctx))
        elif app.spec.env.get(SETUP_KEY) != spec.env[SETUP_KEY] or \
                (app.spec.cpu, app.spec.memory) != (spec.cpu, spec.memory):
            actions.append(Action(Kind.REPLACE, "prometheus", app.name,
                                  {"why": "scrape config or resources changed"}))
        elif not PrometheusClient(url, timeout=2).ready():
            if ctx.clock.time() - app.created_at < START_TIMEOUT:
                actions.append(Action(Kind.WAIT, "prometheus", app.name, {"url": url}))
            else:
                actions.append(Action(Kind.REPLACE, "prometheus", app.name,
                                      {"why": f"not answering at {url}"}))
        elif problems := target_problems(ctx.cluster):  # e.g. a node that joined moments ago
            actions.append(Action(Kind.WAIT, "prometheus", app.name, {"pending": problems}))
        return Plan(self.name, tuple(actions), notes=(f"prometheus at {url}",))

    @staticmethod
    def _create(ctx: Context) -> Action:
        """The same action (and fingerprint) whether or not the head runs yet: a saved
        whole-run plan still matches when the run gets here."""
        mon = ctx.config.monitoring
        return Action(Kind.CREATE, "prometheus", app_name(ctx), {
            "scrape_interval_seconds": mon.scrape_interval_seconds, "retention": mon.retention})

    def apply(self, ctx: Context, plan: Plan) -> None:
        platform = ctx.platform
        for action in plan.actions:
            if action.kind in (Kind.CLEANUP, Kind.DELETE, Kind.REPLACE):
                app = prometheus_app(ctx, live_only=False)
                if app is not None:
                    platform.delete_app(app.id)
        if not ctx.config.monitoring.enabled:
            return
        want = desired(ctx)
        if want is None:
            raise DomainError("monitoring needs a running head (run head_launch first)")
        text, spec = want
        platform.write_file(CONFIG_FILE, text)
        if any(a.kind in (Kind.CREATE, Kind.REPLACE) for a in plan.actions):
            app = platform.create_app(spec)
            ctx.reporter.message(f"prometheus {app.name} started: {prometheus_url(ctx.cluster)}")
        self._wait_ready(ctx)
        copied = self._copy_dashboards(ctx)
        if copied:
            ctx.reporter.message(f"Ray's Grafana dashboards ({copied}) copied to "
                                 f"{ctx.config.state_dir / 'grafana'}")

    def _wait_ready(self, ctx: Context) -> None:
        url = prometheus_url(ctx.cluster)
        client = PrometheusClient(url, timeout=2)

        def ready():
            app = prometheus_app(ctx, live_only=False)
            if app is None or app.status in (FAILED, STOPPED):
                tail = ctx.platform.app_log_tail(app) if app else ""
                raise DomainError(f"prometheus app {app_name(ctx)} is "
                                  f"{app.status if app else 'gone'}" + (f"\n{tail}" if tail else ""))
            return app.status == RUNNING and client.ready()
        try:
            poll_until(ready, START_TIMEOUT, f"prometheus at {url}", on_wait=ctx.on_wait,
                       clock=ctx.clock, interval=0.5)
        except TimedOut:
            raise DomainError(f"prometheus did not answer at {url} within {START_TIMEOUT}s") from None

    @staticmethod
    def _copy_dashboards(ctx: Context) -> int:
        """Ray writes Grafana dashboards for the cluster into the head's session dir (on
        the head's host: copied from there where the platform reaches its files)."""
        source = f"{ctx.cluster.lifecycle.head_temp_dir}/session_latest/metrics/grafana/dashboards"
        try:
            found = ctx.platform.head_files(source, ".json") or {}
        except DomainError as e:  # the dashboards are a convenience: say so, go on
            ctx.reporter.message(f"Ray's Grafana dashboards not copied: {e}")
            return 0
        if found:
            target = ctx.config.state_dir / "grafana"
            target.mkdir(parents=True, exist_ok=True)
            for name, text in found.items():
                (target / Path(name).name).write_text(text)
        return len(found)

    def verify(self, ctx: Context) -> list[str]:
        if not ctx.config.monitoring.enabled:
            app = prometheus_app(ctx)
            return [f"{app.name} still runs with monitoring off"] if app else []
        return target_problems(ctx.cluster, wait=True, on_wait=ctx.on_wait)

"""Prometheus for a raydeploy cluster: its config, its command line, a small client.

Facts it relies on (Ray 2.60.0, Debian's prometheus 2.42; commands and output in
docs/monitoring-notes.md):

- Only the HEAD writes Ray's service-discovery file (its dashboard, every 5 s):
  ``<head temp dir>/session_<...>/prom_metrics_service_discovery.json``, plus a symlink
  ``<head temp dir>/prom_metrics_service_discovery.json`` that Ray re-points at the newest
  session. It lists every ALIVE node's ``ip:metrics_export_port`` (workers too) and the
  head's autoscaler and dashboard metrics servers.
- Ray's metrics ports answer without the Ray auth token (the dashboard REST does not).
- Per-node CPU is ``ray_node_cpu_utilization`` (percent) with labels ``ip``, ``IsHeadNode``,
  ``RayNodeType``, ``SessionName``, ``Version``; Prometheus adds ``job`` and ``instance``.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import requests
import yaml

SD_FILE_NAME = "prom_metrics_service_discovery.json"
NODE_CPU_METRIC = "ray_node_cpu_utilization"
DEBIAN_BINARY = "/usr/bin/prometheus"
# Without --no-install-recommends apt also installs (and on a systemd host starts)
# prometheus-node-exporter on 0.0.0.0:9100, which we do not use.
INSTALL_COMMAND = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]


class PrometheusError(RuntimeError):
    """Prometheus answered, but not with success (bad query, bad status)."""


def _duration(seconds: float) -> str:
    """Prometheus durations take integer units: 0.5 -> 500ms, 10 -> 10s."""
    ms = int(round(seconds * 1000))
    if ms <= 0:
        raise ValueError(f"a duration must be positive, not {seconds!r}")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def render_config(sd_file: Path | None, extra_targets: list[dict], scrape_interval: float = 10.0,
                  *, ray_job: str = "ray", ray_targets: Iterable[str] = (),
                  cluster_label: str | None = None, sd_refresh_interval: float = 5.0,
                  scrape_timeout: float | None = None) -> str:
    """A prometheus.yml: a ``ray`` job on Ray's SD file, and one static job per extra target.

    ``extra_targets`` items: ``{"job": str, "targets": ["host:port", ...]}`` and optionally
    ``metrics_path`` (default /metrics), ``scheme``, ``labels`` (dict), ``scrape_interval``
    (seconds) and ``bearer_token_file``: the PATH of a file holding the token, rendered as
    ``authorization: {credentials_file: ...}`` so the secret never enters this text (Prometheus
    serves its loaded config at /api/v1/status/config to anyone who can reach it). A raw
    ``bearer_token`` is refused: write it with ``write_secret`` (or use ``write_config``).

    ``ray_targets`` adds static Ray targets (e.g. each node's ``--metrics-export-port``) for
    when there is no SD file. ``cluster_label`` sets ``ray_io_cluster`` on Ray's series: the
    label Ray's generated Grafana dashboards filter by.
    """
    interval = _duration(scrape_interval)
    timeout = _duration(scrape_timeout if scrape_timeout else min(scrape_interval, 10.0))
    scrape_configs = []
    ray_targets = list(ray_targets)
    if sd_file is not None or ray_targets:
        job: dict = {"job_name": ray_job, "metrics_path": "/metrics"}
        if sd_file is not None:
            job["file_sd_configs"] = [{"files": [str(sd_file)],
                                       "refresh_interval": _duration(sd_refresh_interval)}]
        if ray_targets:
            job["static_configs"] = [{"targets": ray_targets}]
        if cluster_label:
            job["relabel_configs"] = [{"target_label": "ray_io_cluster",
                                       "replacement": cluster_label}]
        scrape_configs.append(job)
    seen = {ray_job} if scrape_configs else set()
    for extra in extra_targets:
        if "bearer_token" in extra:
            raise ValueError(f"job {extra.get('job')!r}: give bearer_token_file (a 0600 file, "
                             "see write_secret), never the token itself")
        name = extra["job"]
        if name in seen:
            raise ValueError(f"duplicate job name {name!r}")
        seen.add(name)
        job = {"job_name": name, "metrics_path": extra.get("metrics_path", "/metrics"),
               "scheme": extra.get("scheme", "http")}
        if "scrape_interval" in extra:
            job["scrape_interval"] = _duration(extra["scrape_interval"])
            job["scrape_timeout"] = _duration(min(extra["scrape_interval"], 10.0))
        if extra.get("bearer_token_file"):
            # Read by Prometheus on every scrape: a rotated token needs no reload.
            job["authorization"] = {"type": "Bearer",
                                    "credentials_file": str(extra["bearer_token_file"])}
        static = {"targets": list(extra["targets"])}
        if extra.get("labels"):
            static["labels"] = dict(extra["labels"])
        job["static_configs"] = [static]
        scrape_configs.append(job)
    config = {"global": {"scrape_interval": interval, "scrape_timeout": timeout,
                         "evaluation_interval": interval},
              "scrape_configs": scrape_configs}
    return "# Written by raydeploy (cluster/prometheus.py); rewritten on change.\n" + \
        yaml.safe_dump(config, sort_keys=False)


def prometheus_binary() -> str | None:
    """The prometheus executable: on PATH, else where Debian's package puts it."""
    found = shutil.which("prometheus")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def prometheus_command(binary: str, config_file: str | Path, data_dir: str | Path, listen: str,
                       retention: str = "1d") -> list[str]:
    """argv for a foreground Prometheus that we own.

    ``listen`` is ``127.0.0.N:PORT``: always explicit, as the default is 0.0.0.0:9090 (all
    interfaces, and the port a Debian system service would take). No --web.enable-lifecycle:
    it lets anyone who reaches the port POST /-/quit; we reload with SIGHUP instead.
    """
    return [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={listen}", f"--storage.tsdb.retention.time={retention}"]


class PrometheusClient:
    """The few calls raydeploy needs from Prometheus's HTTP API."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _get(self, path: str, **params) -> dict:
        response = self.session.get(self.url + path, params=params or None, timeout=self.timeout)
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"GET {path}: HTTP {response.status_code} "
                                  f"{body.get('errorType', '')} {body.get('error', response.text[:200])}")
        return body["data"]

    def ready(self) -> bool:
        """Whether /-/ready answers 200 (TSDB open, config loaded); False if unreachable."""
        try:
            return self.session.get(self.url + "/-/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def targets(self) -> list[dict]:
        """Active targets: ``job``, ``instance``, ``health`` (up/down/unknown), ``lastError``,
        ``scrapeUrl``, ``lastScrape``, ``labels``."""
        data = self._get("/api/v1/targets", state="active")
        return [{"job": t["labels"].get("job"), "instance": t["labels"].get("instance"),
                 "health": t["health"], "lastError": t.get("lastError", ""),
                 "scrapeUrl": t.get("scrapeUrl"), "lastScrape": t.get("lastScrape"),
                 "labels": t["labels"]} for t in data["activeTargets"]]

    def query(self, expr: str) -> list[tuple[dict, float]]:
        """An instant query: ``[(labels, value), ...]`` (a scalar gives one row, no labels)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] == "vector":
            return [(row["metric"], float(row["value"][1])) for row in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise PrometheusError(f"query {expr!r}: unexpected result type {data['resultType']}")

"""GET /metrics: the control plane in Prometheus' text format.

What the store records is read at scrape time by ``StoreCollector`` (runs by status,
checkpoint durations, gate waits, pending approvals, approvals by decision and source), so
runs made from the CLI count as well as the API's and every server process answers the
same. What happens inside the process (API request latency, platform calls) lives in
core/metrics.py; under gunicorn every worker's values are added up (multiprocess mode).
The viewer role is required unless ``api.metrics_public: true``."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from core import metrics

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Request labels come from closed sets: anyone may send any method to any path (before auth),
# and every new label value is a new series kept for the life of the process.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class StoreCollector:
    """Metrics computed from the store at each scrape."""

    def __init__(self, store_factory):
        self.store_factory = store_factory  # () -> Store (the API opens one per thread)

    def collect(self):
        store = self.store_factory()
        runs = GaugeMetricFamily("raydeploy_runs", "Runs recorded, by status", labels=["status"])
        for status, n in sorted(store.metrics.run_counts().items()):
            runs.add_metric([status], n)
        yield runs
        yield _histogram("raydeploy_checkpoint_duration_seconds",
                         "How long checkpoints took, by checkpoint and outcome",
                         ["checkpoint", "outcome"],
                         (((c, o), d) for c, o, d in store.metrics.checkpoint_durations()))
        yield _histogram("raydeploy_gate_wait_seconds",
                         "From a gate's approval request to its decision, by checkpoint",
                         ["checkpoint"], (((c,), w) for c, w in store.metrics.gate_waits()))
        yield GaugeMetricFamily("raydeploy_approvals_pending",
                                "Approval requests waiting for a decision",
                                value=store.metrics.pending_approvals())
        decisions = CounterMetricFamily("raydeploy_approvals", "Approval decisions recorded, by "
                                        "decision and source", labels=["decision", "source"])
        for decision, source, n in store.metrics.approval_counts():
            decisions.add_metric([decision, source], n)
        yield decisions
        deliveries = CounterMetricFamily("raydeploy_notification_deliveries",
                                         "Notification deliveries, by event and status",
                                         labels=["event", "status"])
        for event, status, n in store.deliveries.delivery_counts():
            deliveries.add_metric([event, status], n)
        yield deliveries


def _histogram(name: str, doc: str, labels: list[str], samples) -> HistogramMetricFamily:
    grouped: dict[tuple, list[float]] = {}
    for key, value in samples:
        grouped.setdefault(key, []).append(max(0.0, value))
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, values in sorted(grouped.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric(list(key), buckets, sum(values))
    return family


def registry_for(store_factory) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # gunicorn: every worker's values
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in (metrics.API_REQUESTS, metrics.PLATFORM_CALLS, metrics.PLATFORM_RETRIES):
            registry.register(metric)
    registry.register(StoreCollector(store_factory))
    return registry


def install(app: Flask, store_factory) -> None:
    """The /metrics route and the request timing every route reports to."""
    registry = registry_for(store_factory)

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.get("metrics_started")
        if started is not None and request.path != "/metrics":
            method = request.method if request.method in METHODS else "other"
            route = request.url_rule.rule if request.url_rule else "unmatched"  # a template
            metrics.API_REQUESTS.labels(method, route, str(response.status_code)).observe(
                time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        # the classic text format: what every Prometheus version parses
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

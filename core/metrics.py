"""The process's own Prometheus metrics (prometheus_client): API request latency, platform
calls. Served by the API's /metrics together with what the store records (see
api_server/metrics.py). Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set in gunicorn.conf.py
before anything imports prometheus_client) makes every worker's values add up."""
from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

API_REQUESTS = Histogram(
    "raydeploy_api_request_seconds", "API request latency, by route and status",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS)
PLATFORM_CALLS = Histogram(
    "raydeploy_platform_call_seconds", "Calls to the platform's API, by operation and "
    "status ('error' when no answer came)", ["platform", "operation", "status"],
    buckets=LATENCY_BUCKETS)
PLATFORM_RETRIES = Counter(
    "raydeploy_platform_call_retries_total", "Platform API calls tried again (429, 5xx, no "
    "answer), by operation", ["platform", "operation"])

_ID = re.compile(r"/[^/:]*\d[^/:]*")


def operation(method: str, path: str) -> str:
    """``POST /projects/{id}/applications``: ids out, so the label set stays small."""
    return f"{method} {_ID.sub('/{id}', path.split('?', 1)[0])}"

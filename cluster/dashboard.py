"""A small client for the Ray dashboard's REST API (nodes, health, jobs, Serve applications)."""
from __future__ import annotations

import requests

from core import crashpoints
from core.errors import Unavailable
from core.timing import SYSTEM_CLOCK, Clock


class DashboardError(Unavailable):
    """The Ray dashboard did not answer (``status`` None), or answered with an error."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _reason(text: str) -> str:
    """What went wrong, from an answer that may be a whole Python traceback: its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Traceback"):
        return lines[-1][:300]
    return text.strip()[:300]


class DashboardClient:
    clock: Clock = SYSTEM_CLOCK
    auth_note: str | None = None  # said when the dashboard refuses (401, 403): why no token

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: never route through an HTTP proxy
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except requests.RequestException as e:
            raise DashboardError(f"{method} {path}: dashboard unreachable "
                                 f"({type(e).__name__})") from None
        if response.status_code >= 400:
            note = (f" ({self.auth_note})" if self.auth_note and response.status_code in (401, 403)
                    else "")
            raise DashboardError(f"{method} {path}: HTTP {response.status_code} "
                                 f"{_reason(response.text)}{note}", status=response.status_code)
        return response

    def healthy(self) -> bool:
        try:
            return self._call("GET", "/api/gcs_healthz", timeout=2).status_code == 200
        except DashboardError:
            return False

    def prometheus_health(self) -> tuple[bool, str]:
        """Whether the dashboard reaches the Prometheus it was told about (RAY_PROMETHEUS_HOST):
        its metrics pages depend on it."""
        try:
            body = self._call("GET", "/api/prometheus_health", timeout=5).json()
        except (DashboardError, ValueError) as e:
            return False, str(e)
        return bool(body.get("result")), body.get("msg") or ""

    def nodes(self) -> list[dict]:
        body = self._call("GET", "/api/v0/nodes", params={"detail": "true", "limit": 1000}).json()
        return body["data"]["result"]["result"]

    def usage_by_node(self) -> dict[str, dict[str, float]]:
        """Resources in use per node id, from the autoscaler's report (lags by one tick, ~1 s)."""
        body = self._call("GET", "/api/cluster_status").json()
        report = ((body.get("data") or {}).get("clusterStatus") or {}).get("loadMetricsReport") or {}
        return {node_id: {res: pair[0] for res, pair in usage.items()}
                for node_id, usage in (report.get("usageByNode") or {}).items()}

    def actors(self) -> list[dict]:
        """Ray's live actors (Serve replicas among them) with their node and resource demand."""
        body = self._call("GET", "/api/v0/actors", params={
            "detail": "true", "limit": 10000, "filter_keys": "state", "filter_predicates": "=",
            "filter_values": "ALIVE"}).json()
        return body["data"]["result"]["result"]

    def jobs(self) -> list[dict]:
        """Ray jobs (status, driver_node_id, ...)."""
        return self._call("GET", "/api/jobs/").json()

    def submit_job(self, entrypoint: str, submission_id: str, metadata: dict) -> None:
        """Start a Ray job (the Jobs API that ``ray job submit`` uses)."""
        self._call("POST", "/api/jobs/", json={"entrypoint": entrypoint,
                                               "submission_id": submission_id,
                                               "metadata": metadata})

    def job(self, submission_id: str) -> dict:
        """A job's ``status`` (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and ``message``."""
        return self._call("GET", f"/api/jobs/{submission_id}").json()

    def job_logs(self, submission_id: str) -> str:
        return self._call("GET", f"/api/jobs/{submission_id}/logs").json().get("logs") or ""

    def stop_job(self, submission_id: str) -> None:
        self._call("POST", f"/api/jobs/{submission_id}/stop")

    def delete_job(self, submission_id: str) -> None:
        """Forget an ended job (its record and logs)."""
        self._call("DELETE", f"/api/jobs/{submission_id}")

    def serve_applications(self) -> dict:
        """Live status: ``applications{name: {status, message, route_prefix, deployments}}``."""
        return self._call("GET", "/api/serve/applications/").json()

    def put_serve(self, config: dict, retry_seconds: float = 60) -> None:
        """PUT the whole Serve config (declarative, so a retry is safe). A head that has just
        started may answer 5xx while it starts Serve's controller: tried again, with backoff,
        for ``retry_seconds``."""
        deadline, delay = self.clock.monotonic() + retry_seconds, 1.0
        while True:
            try:
                self._call("PUT", "/api/serve/applications/", json=config, timeout=60)
                break
            except DashboardError as e:
                if e.status is not None and e.status < 500 or self.clock.monotonic() + delay > deadline:
                    raise
                self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)
        crashpoints.wrote()

    def version(self) -> dict:
        return self._call("GET", "/api/version").json()

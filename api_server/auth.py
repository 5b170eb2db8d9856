"""Which role each request needs: one table, easy to audit. Principals, roles and tokens are
``checkpoints.access`` (the CLI uses the same); the API authenticates callers by token, and
slows down whoever keeps presenting wrong ones (``FailedAuthLimiter``)."""
from __future__ import annotations

import threading
from collections import OrderedDict

from core.ratelimit import TokenBucket
from core.timing import SYSTEM_CLOCK, Clock

# The API's own documentation holds no cluster data: open, so a browser can show it.
DOCS = ("/docs", "/redoc", "/openapi.json")


def required_role(method: str, path: str) -> str | None:
    """The role a request needs; None for the open health probe and docs."""
    if path == "/health" or path in DOCS or path.startswith("/docs-assets/"):
        return None
    if path == "/ui" or path.startswith("/ui/"):  # the web inbox's own files: no data in them
        return None
    if path.startswith("/api/v1/hosts/") and method != "OPTIONS":
        return "operator"  # other people's processes and their command lines
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    if path.startswith("/api/v1/approvals"):
        return "approver"
    return "operator"


APPROVALS, CHECKPOINTS = "/api/v1/approvals", "/api/v1/checkpoints/"


def decision_attempt(method: str, path: str, body) -> tuple[str, str, str | None] | None:
    """(action, target, plan fingerprint) when the request decides at a gate or revokes an
    approval (approve, reject, revoke; running a checkpoint with ``approve: true``): what a
    refusal of it is audited as. None for any other request."""
    body = body if isinstance(body, dict) else {}
    fingerprint = body.get("plan_fingerprint") if isinstance(body.get("plan_fingerprint"), str) \
        else None
    if path == APPROVALS or path.startswith(APPROVALS + "/"):
        key = path[len(APPROVALS):].strip("/")
        if method == "DELETE" and key:
            return "approval.revoke", key[:200], None
        if method == "POST":
            decision = "reject" if body.get("decision") == "reject" else "approve"
            target = key or body.get("checkpoint")
            return f"approval.{decision}", str(target)[:200] if target else "?", fingerprint
    if method == "POST" and path.startswith(CHECKPOINTS) and body.get("approve") is True:
        return "approval.approve", path[len(CHECKPOINTS):][:200], None
    return None


class FailedAuthLimiter:
    """Failed authentications, per client address: a token bucket each (core/ratelimit.py),
    ``burst`` failures at once, then one every ``1 / rate`` seconds. While an address has
    none left, its requests that carry a token are answered 429 without the token being
    checked, so guessing tokens goes no faster than the bucket. At most ``max_addresses``
    are remembered (the longest quiet forgotten first), so the limiter cannot be grown
    without bound either. Per server process (each gunicorn worker has its own)."""

    def __init__(self, burst: int = 10, rate: float = 0.2, max_addresses: int = 10_000,
                 clock: Clock = SYSTEM_CLOCK):
        self.burst, self.rate, self.max_addresses, self.clock = burst, rate, max_addresses, clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try a token again (0.0: now)."""
        with self._lock:
            bucket = self._buckets.get(address)
        return bucket.wait_time() if bucket is not None else 0.0

    def failed(self, address: str) -> float:
        """Count one failure of ``address``; the seconds until it may try again."""
        with self._lock:
            bucket = self._buckets.pop(address, None) or TokenBucket(self.rate, self.burst,
                                                                     self.clock)
            self._buckets[address] = bucket  # the most recent last
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        bucket.try_acquire()
        return bucket.wait_time()

"""A client of the CML REST API v2 (the subset in shared/CML_API.md).

Every call has a timeout; 429, 5xx and connection errors are retried with exponential
backoff (honouring Retry-After), and a host that cannot be reached ends the call within
``budget`` seconds (``cml.timeout_seconds``), retries included. Every request, retries
included, first takes a token from one bucket shared by all threads of the client
(``cml.max_requests_per_second``), so a launch of hundreds of apps stays under the
workspace's rate limit instead of provoking 429s. Lists follow
``next_page_token``; ``search_filter`` is a substring match, so lookups by name compare
exact names here. Errors name the call and the resource, never the API key. Creates are made
idempotent by the callers (look up by name first, see CMLPlatform), because a create whose
answer was lost may still have happened.
"""
from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter

from cluster.platforms.base import PlatformError
from core import crashpoints, metrics
from core.errors import NotFound
from core.ratelimit import TokenBucket
from core.timing import SYSTEM_CLOCK, Clock

RETRY_STATUS = {429, 500, 502, 503, 504}
log = logging.getLogger("raydeploy.platform")  # one line per call (the CLI's --verbose)
DEFAULT_MAX_REQUESTS_PER_SECOND = 50.0
# The client bursts at most half a second's worth: a server that allows the same rate with
# a second's worth of burst then has half a second of slack for requests that were sent
# evenly but arrive bunched up (network and thread scheduling), and never answers 429.
BURST_SECONDS = 0.5


class CMLAuthError(PlatformError):
    pass


class CMLClient:
    def __init__(self, host: str, api_key: str, *, timeout: float = 30.0, budget: float = 10.0,
                 retries: int = 6, backoff: float = 0.2, max_backoff: float = 20.0,
                 page_size: int = 100, session: requests.Session | None = None,
                 max_requests_per_second: float = DEFAULT_MAX_REQUESTS_PER_SECOND,
                 clock: Clock = SYSTEM_CLOCK):
        """``timeout``: to read one answer; ``budget``: how long an unreachable host is
        tried (connection attempts and the waits between them) before the call fails;
        ``max_requests_per_second``: the rate every thread of this client shares."""
        self.host = host.rstrip("/")
        self.base = self.host + "/api/v2"
        self.timeout = timeout
        self.budget = budget
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.page_size = page_size
        self.clock = clock
        self.limiter = TokenBucket(max_requests_per_second,
                                   burst=max_requests_per_second * BURST_SECONDS, clock=clock)
        if session is None:
            # one kept-alive connection per thread that can be sending at once (the limiter
            # sets the pace; requests' default pool of 10 would drop and reopen the rest)
            session = requests.Session()
            pool = max(10, int(self.max_in_flight))
            session.mount(self.host + "/", HTTPAdapter(pool_connections=1, pool_maxsize=pool))
        self.session = session
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.session.headers["Accept"] = "application/json"
        self._counting = threading.Lock()
        self.calls = 0  # requests sent, retries included
        self.throttled = 0  # of them answered 429

    @property
    def max_in_flight(self) -> int:
        """How many calls may usefully be waiting for answers at once: enough that the rate
        limit, not the number of threads, sets the pace while an answer takes up to 2 s
        (creating an application on CML can take that long)."""
        return max(1, int(self.limiter.rate * 2))

    def __repr__(self) -> str:  # never show the key
        return f"CMLClient({self.base!r})"

    # -- transport ---------------------------------------------------------------------------
    def request(self, method: str, path: str, what: str, *, idempotent: bool | None = None,
                **kwargs) -> dict | bytes:
        """``what`` names the call and resource for messages, e.g. "create application ray-head".

        429 is always retried (the request was turned away). 5xx and connection errors are
        retried only for idempotent calls: a create may have happened although its answer was
        lost, so its caller looks the name up before trying again (see CMLPlatform)."""
        if idempotent is None:
            idempotent = method != "POST" or path.rsplit(":", 1)[-1] in ("stop", "restart", "download")
        url = self.base + path
        op = metrics.operation(method, path)
        unanswered = 0.0  # seconds spent on tries that got no answer, and waiting after them
        for attempt in range(self.retries + 1):
            self.limiter.acquire()
            with self._counting:
                self.calls += 1
            wait = max(0.2, min(self.budget - unanswered, self.timeout))
            kwargs["timeout"] = (wait, wait)  # (connect, read)
            started = time.monotonic()
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as e:
                metrics.PLATFORM_CALLS.labels("cml", op, "error").observe(time.monotonic() - started)
                trace(method, path, f"no answer ({type(e).__name__})", started, attempt)
                delay = self._delay(attempt, None)
                unanswered += time.monotonic() - started
                if attempt == self.retries or not idempotent or unanswered + delay >= self.budget:
                    raise PlatformError(f"{what}: CML at {self.host} did not answer "
                                        f"({type(e).__name__} after {attempt + 1} "
                                        f"tr{'y' if attempt == 0 else 'ies'}, {unanswered:.1f}s)"
                                        ) from None
                metrics.PLATFORM_RETRIES.labels("cml", op).inc()
                self.clock.sleep(delay)
                unanswered += delay
                continue
            metrics.PLATFORM_CALLS.labels("cml", op, str(response.status_code)).observe(
                time.monotonic() - started)
            trace(method, path, response.status_code, started, attempt)
            if response.status_code == 429:
                with self._counting:
                    self.throttled += 1
            retry = response.status_code == 429 or (idempotent and response.status_code in RETRY_STATUS)
            if retry and attempt < self.retries:
                metrics.PLATFORM_RETRIES.labels("cml", op).inc()
                self.clock.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            if response.status_code >= 400:
                raise self._error(response, what)
            if method != "GET" and not path.endswith((":download", "/validate_key")):
                crashpoints.wrote()  # the request took effect
            if "json" not in response.headers.get("Content-Type", "json"):
                return response.content
            return response.json() if response.content else {}
        raise PlatformError(f"{what}: gave up")  # not reached

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return delay

    @staticmethod
    def _error(response: requests.Response, what: str) -> PlatformError:
        try:
            detail = response.json().get("message") or response.json().get("error")
        except ValueError:
            detail = response.text[:200]
        status = response.status_code
        if status in (401, 403):
            return CMLAuthError(f"{what}: HTTP {status}, the API key was refused or lacks "
                                f"permission ({detail}); check CML_API_KEY")
        if status == 404:
            return NotFound(f"{what}: not found ({detail})")
        return PlatformError(f"{what}: HTTP {status} ({detail})")

    def list(self, path: str, key: str, what: str, **filters) -> Iterator[dict]:
        """Every item of a paginated list; ``filters`` go into ``search_filter``."""
        params = {"page_size": self.page_size}
        if filters:
            params["search_filter"] = json.dumps(filters)
        token = ""
        while True:
            page = self.request("GET", path, what, params={**params, **({"page_token": token}
                                                                      if token else {})})
            yield from page.get(key) or []
            token = page.get("next_page_token") or ""
            if not token:
                return

    def find_by_name(self, path: str, key: str, name: str, what: str) -> dict | None:
        matches = [i for i in self.list(path, key, what, name=name) if i.get("name") == name]
        return matches[0] if matches else None

    # -- resources ----------------------------------------------------------------------------
    def validate_key(self) -> dict:
        return self.request("POST", "/auth/validate_key", "validate API key", idempotent=True,
                            json={"audience": "API"})

    def runtimes(self) -> list[dict]:
        return list(self.list("/runtimes", "runtimes", "list runtimes"))


def trace(method: str, path: str, outcome, started: float, attempt: int) -> None:
    """``CML POST /projects/p1/applications -> 201 (34 ms)``: the path only (no host, no
    query, no body, no header: nothing that could hold a key or a token)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("CML %s /api/v2%s -> %s (%.0f ms%s)", method, path, outcome,
                  (time.monotonic() - started) * 1000, f", try {attempt + 1}" if attempt else "")


def environment_out(env: dict | str | None) -> dict:
    """``environment`` as CML returns it (a JSON string) -> dict."""
    if isinstance(env, dict):
        return env
    return json.loads(env) if env else {}


def environment_patch(env: dict) -> str:
    """``environment`` for a PATCH body: a JSON-encoded string."""
    return json.dumps(env)


def epoch(stamp: str | None) -> float:
    """A CML time stamp (RFC 3339, ``Z`` for UTC) as Unix time; 0 when missing or unreadable."""
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def with_git_token(url: str, token: str | None) -> str:
    """A private repository's https URL with its token (sent to CML, never printed)."""
    if not token or not url.startswith("https://") or "@" in url.split("/")[2]:
        return url
    return f"https://oauth2:{token}@{url[len('https://'):]}"


def subdomain(name: str) -> str:
    """A valid CML subdomain (^[a-z0-9]+(-[a-z0-9]+)*$) from an app name."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower())).strip("-")[:63].strip("-")

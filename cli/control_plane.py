"""A client of a control plane's REST API (``deploy_master.py --server URL``): calls, the
run's event stream, and its answers mapped back to the domain's error kinds, so a command
exits with the code it would have in embedded mode.

The token comes from RAYDEPLOY_TOKEN or a file (``--token-file`` / RAYDEPLOY_TOKEN_FILE,
owner-only); it is sent only after the server has said, without one, that it manages the
cluster the config names (``/health``): a token never goes to another cluster's server.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import requests

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from core.timing import SYSTEM_CLOCK, Clock

TIMEOUT = 10.0  # seconds an unreachable server may take to be called unreachable
GONE_SECONDS = 180.0  # a control plane that restarts may be away this long from a run's stream
ANSWER_SECONDS = 300.0  # a call may wait this long for its answer (adding a node waits for it)
ERRORS = {400: Invalid, 401: Forbidden, 403: Forbidden, 404: NotFound, 405: Invalid,
          409: Conflict, 413: Invalid, 415: Invalid, 422: Invalid}


def read_token(environ, token_file: str | None = None) -> str | None:
    """RAYDEPLOY_TOKEN, or the token in ``token_file`` / RAYDEPLOY_TOKEN_FILE (which must
    be a regular file only its owner can read: a token is a password)."""
    path = token_file or environ.get("RAYDEPLOY_TOKEN_FILE")
    if path:
        try:
            info = os.stat(path)
        except OSError as e:
            raise Invalid(f"token file {path}: {e.strerror}", field="token_file") from None
        if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Invalid(f"token file {path} must be a file only you can read (chmod 600 "
                          f"{path})", field="token_file")
        return Path(path).read_text().strip() or None
    return (environ.get("RAYDEPLOY_TOKEN") or "").strip() or None


class ControlPlane:
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, url: str, token: str | None, timeout: float = TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"ControlPlane({self.url!r})"

    # -- calls ------------------------------------------------------------------------------------
    def call(self, method: str, path: str, what: str, *, authenticated: bool = True,
             read_timeout: float = ANSWER_SECONDS, **kwargs) -> requests.Response:
        """One request; an unreachable server fails it within ``self.timeout``, a server
        that does not answer within ``read_timeout``."""
        headers = dict(kwargs.pop("headers", {}))
        if authenticated and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self.session.request(method, self.url + path, headers=headers,
                                            timeout=(self.timeout, read_timeout), **kwargs)
        except requests.RequestException as e:
            raise Unavailable(f"{what}: the control plane at {self.url} did not answer "
                              f"({type(e).__name__})") from None
        if response.status_code >= 400:
            raise self._error(response, what)
        return response

    def _error(self, response: requests.Response, what: str) -> DomainError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = body.get("message") or response.reason
        fields = (body.get("errors") or {}).get("json") or {}
        if fields:
            message += " (" + "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                                        for k, v in sorted(fields.items())) + ")"
        if response.status_code == 401:
            message = (f"the control plane at {self.url} refused the token (HTTP 401): set "
                       f"RAYDEPLOY_TOKEN (or --token-file) to a token it knows")
        kind = ERRORS.get(response.status_code, Unavailable)
        return kind(f"{what}: {message}")

    def get(self, path: str, what: str, **params) -> dict:
        return self.call("GET", path, what, params=params or None).json()

    def post(self, path: str, what: str, body: dict | None = None) -> dict:
        return self.call("POST", path, what, json=body or {}).json()

    # -- what the commands need -------------------------------------------------------------------
    def health(self) -> dict:
        """The server's own word on what it manages (no token sent)."""
        return self.call("GET", "/health", "health", authenticated=False,
                         read_timeout=self.timeout).json()

    def check_cluster(self, cluster_name: str, platform: str) -> dict:
        """The server manages this cluster on this platform, or Conflict saying whose it is."""
        health = self.health()
        theirs = (health.get("cluster_name"), health.get("platform"))
        if theirs != (cluster_name, platform):
            raise Conflict(f"{self.url} is the control plane of cluster {theirs[0]!r} on "
                           f"{theirs[1]}, not of {cluster_name!r} on {platform}: cluster names "
                           f"differ, so nothing was sent to it (check --server)")
        return health

    def events(self, run_id: str, after: int = 0, quiet: float = 10.0) -> Iterator[dict]:
        """The run's events from ``after`` on, until it ends: dicts with ``id``, ``kind``,
        ``checkpoint``, ``message``, ``data``; ``{"kind": "quiet"}`` whenever nothing came
        for ``quiet`` seconds (the stream is then opened again from where it was)."""
        path = f"/api/v1/deployments/{run_id}/events"
        gone_since = None  # the server has not answered since then (restarting, say)
        while True:
            try:
                response = self.call("GET", path, "follow the run", stream=True,
                                     headers={"Last-Event-ID": str(after),
                                              "Accept": "text/event-stream"},
                                     read_timeout=quiet)
                gone_since = None
                for event in _parse_sse(response):
                    if event["kind"] == "end":
                        return
                    after = max(after, event["id"] or after)
                    yield event
            except (requests.RequestException, Unavailable) as e:
                if isinstance(e, Unavailable):
                    gone_since = gone_since or self.clock.monotonic()
                    if self.clock.monotonic() - gone_since > GONE_SECONDS:  # not coming back
                        raise
                    self.clock.sleep(1)
            yield {"kind": "quiet", "id": None, "checkpoint": None, "message": "", "data": {}}


def _parse_sse(response: requests.Response) -> Iterator[dict]:
    """Server-Sent Events as dicts (``event: end`` as kind "end")."""
    event: dict = {}
    for raw in response.iter_lines(decode_unicode=True):
        line = raw or ""
        if not line:
            if "kind" in event:
                yield event
            event = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event["id"] = int(value) if value.isdigit() else None
        elif field == "event":
            event["kind"] = value
            event.setdefault("id", None)
        elif field == "data":
            try:
                data = json.loads(value)
            except ValueError:
                data = {}
            event.update(checkpoint=data.get("checkpoint"), message=data.get("message", ""),
                         data=data.get("data") or {}, status=data.get("status"))

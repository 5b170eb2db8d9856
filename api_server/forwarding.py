"""A WSGI app that hands every request to another server and streams its answer back.

The management API on the cluster (api_server/serve_app.py) is one, where a control plane
runs the cluster: it holds no authority of its own (no store, no principals; whatever the
cluster's code writes into its Serve config, it can grant nothing), and the control plane
authenticates every request it forwards. The CML simulator's edge forwards apps' public
URLs with it too. Answers stream, so a run's Server-Sent Events pass as they are sent.
"""
from __future__ import annotations

import json
from http import HTTPStatus

import requests
from werkzeug.wrappers import Request

# not forwarded (RFC 9110 7.6.1 hop-by-hop; the body is framed again here)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "content-length",
                        "host"})


def error(start_response, status: int, message: str, extra: list | None = None):
    """A JSON error answer, in the API's shape."""
    body = json.dumps({"code": status, "status": HTTPStatus(status).phrase,
                       "message": message}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(extra or [])])
    return [body]


def forward(session: requests.Session, request: Request, url: str, headers: dict,
            start_response, what: str):
    """Send ``request`` (with ``headers``) to ``url``; its answer, streamed."""
    try:
        upstream = session.request(request.method, url, headers=headers,
                                   data=request.get_data(), stream=True, allow_redirects=False,
                                   timeout=(5, 300))
    except requests.RequestException as e:
        return error(start_response, 502, f"{what} did not answer ({type(e).__name__})")
    start_response(f"{upstream.status_code} {upstream.reason}",
                   [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in HOP_BY_HOP])
    return Body(upstream)


def passed_on(request: Request) -> dict:
    """The request's headers that go on to the next server."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["X-Forwarded-Host"] = request.host
    # who called us, appended (what came before it is the caller's word): a server that
    # trusts this one (api.trusted_proxies) limits and audits that address, not ours
    headers["X-Forwarded-For"] = ", ".join(filter(None, (
        request.headers.get("X-Forwarded-For"), request.remote_addr)))
    return headers


class Body:
    """An upstream body, passed on as it arrives; the connection is let go when done."""

    def __init__(self, upstream: requests.Response):
        self.upstream = upstream

    def __iter__(self):
        yield from self.upstream.raw.stream(65536, decode_content=False)

    def close(self):
        self.upstream.close()


class Forwarder:
    """Every request to ``base_url`` (path and query kept)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, environ, start_response):
        request = Request(environ)
        return forward(self.session, request, self.base_url + request.full_path.rstrip("?"),
                       passed_on(request), start_response, f"the control plane at {self.base_url}")

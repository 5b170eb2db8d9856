"""The workspace's edge (pods mode): one HTTP listener for the CML API and for every
application's public URL, told apart by the Host header, as CML's ingress does.

- ``<domain>`` (and any other name or address): the CML API.
- ``<subdomain>.<domain>``: that application, forwarded to its pod's ``127.0.0.1:$CDSW_APP_PORT``
  (through the pod's proxy). Unless the app was created with ``bypass_authentication``, the
  edge wants the workspace's credentials first (here: the API key as a bearer token, which
  stands for CML's login) and does not pass them on to the app.

Responses stream (an app's Server-Sent Events reach the client as they are sent).
"""
from __future__ import annotations

import json
from http import HTTPStatus

import requests
from werkzeug.wrappers import Request

from cml_simulator.pods import FORWARD_PORT

# not forwarded (RFC 9110 7.6.1 hop-by-hop; the edge frames the body itself)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "content-length", "host"}


class Edge:
    def __init__(self, api, workspace, domain: str):
        self.api = api  # the CML API's WSGI app
        self.workspace = workspace
        self.suffix = "." + domain.lower()
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, environ, start_response):
        host = (environ.get("HTTP_HOST") or "").split(":")[0].lower().rstrip(".")
        if not host.endswith(self.suffix):
            return self.api(environ, start_response)
        return self.application(host[: -len(self.suffix)], Request(environ), start_response)

    def application(self, subdomain: str, request: Request, start_response):
        ws = self.workspace
        record = next((a for a in list(ws.apps.values()) if a["subdomain"] == subdomain), None)
        if record is None:
            return answer(start_response, 404, f"no application at {subdomain}{self.suffix}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if not record["bypass_authentication"]:
            if request.headers.get("Authorization") != f"Bearer {ws.api_key}":
                return answer(start_response, 401, "sign in to the workspace first (this "
                              "application does not bypass authentication)",
                              [("WWW-Authenticate", "Bearer")])
            headers.pop("Authorization", None)  # the workspace's credentials stay here
        address = ws.app_address(record)
        if address is None or ws.app_status(record) != "APPLICATION_RUNNING":
            return answer(start_response, 503, f"application {record['name']} is not running")
        headers["X-Forwarded-Host"] = request.host
        url = f"http://{address}:{FORWARD_PORT}{request.full_path.rstrip('?')}"
        try:
            upstream = self.session.request(request.method, url, headers=headers,
                                            data=request.get_data(), stream=True,
                                            allow_redirects=False, timeout=(5, 300))
        except requests.RequestException as e:
            return answer(start_response, 502, f"application {record['name']} did not answer "
                                                f"({type(e).__name__})")
        start_response(f"{upstream.status_code} {upstream.reason}",
                       [(k, v) for k, v in upstream.raw.headers.items()
                        if k.lower() not in HOP_BY_HOP])
        return Body(upstream)


class Body:
    """An upstream body, passed on as it arrives; the connection is let go when done."""

    def __init__(self, upstream: requests.Response):
        self.upstream = upstream

    def __iter__(self):
        yield from self.upstream.raw.stream(65536, decode_content=False)

    def close(self):
        self.upstream.close()


def answer(start_response, status: int, message: str, extra: list | None = None):
    body = json.dumps({"error": message, "code": status, "message": message}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(body))), *(extra or [])])
    return [body]

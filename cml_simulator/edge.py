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

import requests
from werkzeug.wrappers import Request

from api_server.forwarding import error, forward, passed_on
from cml_simulator.pods import FORWARD_PORT


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
            return error(start_response, 404, f"no application at {subdomain}{self.suffix}")
        headers = passed_on(request)
        if not record["bypass_authentication"]:
            if request.headers.get("Authorization") != f"Bearer {ws.api_key}":
                return error(start_response, 401, "sign in to the workspace first (this "
                             "application does not bypass authentication)",
                             [("WWW-Authenticate", "Bearer")])
            headers.pop("Authorization", None)  # the workspace's credentials stay here
        address = ws.app_address(record)
        if address is None or ws.app_status(record) != "APPLICATION_RUNNING":
            return error(start_response, 503, f"application {record['name']} is not running")
        url = f"http://{address}:{FORWARD_PORT}{request.full_path.rstrip('?')}"
        return forward(self.session, request, url, headers, start_response,
                       f"application {record['name']}")

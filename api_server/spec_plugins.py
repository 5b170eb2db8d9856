"""apispec plugin: document the answers every operation can give from the guards in front of
it (Host, body size, content type) and the role table the server enforces
(``auth.required_role``), so the spec lists every 4xx it sends."""
from __future__ import annotations

import re

from apispec import BasePlugin

from api_server.auth import required_role
from api_server.guards import MUTATING


class AuthResponsesPlugin(BasePlugin):
    """401 (auth on, no valid token) and 403 (a role is missing) on every protected operation;
    the responses are flask-smorest's own components, in its error shape."""

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        flask_path = re.sub(r"\{(\w+)\}", r"<\1>", path or "")
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", "BAD_REQUEST")  # a Host this API does not answer to
            responses.setdefault("503", "SERVICE_UNAVAILABLE")  # the state store failed
            if method.upper() in MUTATING:
                responses.setdefault("413", "REQUEST_ENTITY_TOO_LARGE")  # api.max_body_bytes
                responses.setdefault("415", "UNSUPPORTED_MEDIA_TYPE")  # JSON only
            role = required_role(method.upper(), flask_path)
            if role is None:
                continue
            responses.setdefault("401", "UNAUTHORIZED")
            if role != "viewer":
                responses.setdefault("403", "FORBIDDEN")

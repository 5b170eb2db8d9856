"""apispec plugin: document the answers every operation can give from the guards in front of
it (Host, body size, content type) and the role table the server enforces
(``auth.required_role``), so the spec lists every 4xx it sends."""
from __future__ import annotations

import re

from apispec import BasePlugin

from api_server.auth import required_role
from api_server.errors import RETRY_AFTER
from api_server.guards import MUTATING

# Stable operationIds: what generated clients and web UIs bind to. One table, so renaming is
# a visible decision; a route missing from it fails the spec build (and its tests).
OPERATION_IDS = {
    ("GET", "/health"): "getHealth",
    ("GET", "/api/v1/plan"): "getRunPlan",
    ("POST", "/api/v1/plan"): "planDesiredState",
    ("GET", "/api/v1/checkpoints"): "listCheckpoints",
    ("GET", "/api/v1/checkpoints/{name}"): "getCheckpoint",
    ("POST", "/api/v1/checkpoints/{name}"): "runCheckpoint",
    ("GET", "/api/v1/approvals"): "listApprovals",
    ("POST", "/api/v1/approvals"): "decideApproval",
    ("GET", "/api/v1/approvals/{key}"): "getGate",
    ("POST", "/api/v1/approvals/{key}"): "decideGate",
    ("DELETE", "/api/v1/approvals/{key}"): "revokeApproval",
    ("GET", "/api/v1/deployments"): "listDeployments",
    ("POST", "/api/v1/deployments"): "startDeployment",
    ("GET", "/api/v1/deployments/{run_id}"): "getDeployment",
    ("POST", "/api/v1/deployments/{run_id}/cancel"): "cancelDeployment",
    ("GET", "/api/v1/deployments/{run_id}/events"): "streamDeploymentEvents",
    ("GET", "/api/v1/cluster/status"): "getClusterStatus",
    ("GET", "/api/v1/cluster/health"): "getClusterHealth",
    ("GET", "/api/v1/cluster/info"): "getClusterInfo",
    ("GET", "/api/v1/resources/nodes"): "listNodes",
    ("GET", "/api/v1/nodes"): "listNodesShort",
    ("GET", "/api/v1/resources/capacity"): "getCapacity",
    ("POST", "/api/v1/resources/nodes/add"): "addNode",
    ("DELETE", "/api/v1/resources/nodes/{app_id}"): "removeNode",
    ("GET", "/api/v1/applications"): "listApplications",
    ("POST", "/api/v1/applications"): "deployApplication",
    ("GET", "/api/v1/applications/{name}"): "getApplication",
    ("DELETE", "/api/v1/applications/{name}"): "deleteApplication",
    ("GET", "/api/v1/hosts/foreign-ray"): "listForeignRay",
    ("POST", "/api/v1/hosts/cleanup"): "cleanupHosts",
    ("GET", "/api/v1/audit"): "listAuditEvents",
    ("GET", "/api/v1/audit/verify"): "verifyAuditTrail",
    ("GET", "/api/v1/notifications"): "listNotificationDeliveries",
    ("POST", "/api/v1/notifications/test"): "sendTestNotification",
    ("GET", "/api/v1/whoami"): "whoAmI",
}


class OperationIdPlugin(BasePlugin):
    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for method, operation in (operations or {}).items():
            key = (method.upper(), path)
            if key not in OPERATION_IDS:
                raise KeyError(f"{method.upper()} {path} has no operationId: add it to "
                               f"api_server/spec_plugins.OPERATION_IDS")
            operation["operationId"] = OPERATION_IDS[key]


TOO_MANY_FAILURES = {"description": "too many failed authentications from this address "
                                    "(or too many at once): retry after `Retry-After` seconds",
                     "headers": RETRY_AFTER,
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


class AuthResponsesPlugin(BasePlugin):
    """401 (auth on, no valid token), 429 (too many failed tokens from the caller's address)
    and 403 (a role is missing) on every protected operation; the responses are
    flask-smorest's own components, in its error shape."""

    def init_spec(self, spec) -> None:
        super().init_spec(spec)
        spec.components.response("TOO_MANY_FAILURES", TOO_MANY_FAILURES)

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
            responses.setdefault("429", "TOO_MANY_FAILURES")
            if role != "viewer":
                responses.setdefault("403", "FORBIDDEN")

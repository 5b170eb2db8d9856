"""Domain errors mapped to HTTP once, all in flask-smorest's shape {code, status, message, errors}."""
from __future__ import annotations

import logging

from werkzeug.exceptions import default_exceptions

from checkpoints.errors import (Conflict, DeployError, InvalidRequest, NotFound,
                                SelfApprovalForbidden)
from cluster.dashboard import DashboardError
from cluster.manager import ClusterError, Conflict as ClusterConflict
from cluster.platform import NotFound as PlatformNotFound, PlatformError
from cluster.serve import RoutePrefixTaken, ServeError
from cluster.serve_inspect import BadImportPath
from store import LeaseHeld

log = logging.getLogger(__name__)

STATUS = (  # first match wins
    (InvalidRequest, 422), (BadImportPath, 422), (NotFound, 404), (PlatformNotFound, 404), (Conflict, 409),
    (ClusterConflict, 409), (RoutePrefixTaken, 409), (LeaseHeld, 409),
    (SelfApprovalForbidden, 403), (DeployError, 400),
    # e.g. "the cluster has no running head": the request conflicts with the cluster's state
    (ClusterError, 409), (ServeError, 409),
    (DashboardError, 503), (PlatformError, 502),
)


def http_error(api, code: int, message: str, errors: dict | None = None, headers: dict | None = None):
    exc = default_exceptions[code]()
    exc.data = {"message": message}
    if errors:
        exc.data["errors"] = errors
    if headers:
        exc.data["headers"] = headers
    return api.handle_http_exception(exc)


def register(app, api) -> None:
    def domain_error(error):
        code = next(c for cls, c in STATUS if isinstance(error, cls))
        errors = None
        if isinstance(error, InvalidRequest) and error.field:
            errors = {"json": {error.field: [str(error)]}}
        elif isinstance(error, BadImportPath):
            errors = {"json": {"import_path": [str(error)]}}
        return http_error(api, code, str(error), errors)

    for cls, _ in STATUS:
        app.register_error_handler(cls, domain_error)

    def unexpected(error):
        log.exception("unexpected error")
        return http_error(api, 500, "internal error (details are in the server log)")
    app.register_error_handler(Exception, unexpected)

"""Domain errors mapped to HTTP once, all in flask-smorest's shape {code, status, message, errors}.

One table on the five kinds of ``core.errors``; routes document the kinds they raise with
``@raises(...)``, which takes the codes from the same table, so the spec says what the code
answers."""
from __future__ import annotations

import logging

from flask_smorest.error_handler import ErrorSchema
from werkzeug.exceptions import default_exceptions

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable

log = logging.getLogger(__name__)

class TooManyRequests(Unavailable):
    """A bounded resource of this server (an event stream slot) is taken: retry later."""
    retry_after = 5


STATUS: dict[type[DomainError], int] = {TooManyRequests: 429, Invalid: 422, Forbidden: 403,
                                        NotFound: 404, Conflict: 409, Unavailable: 503}
DESCRIPTION = {TooManyRequests: "too many at once: retry after `Retry-After` seconds",
               Invalid: "invalid input (field errors in `errors.json`)",
               Forbidden: "the caller may not do this", NotFound: "not found",
               Conflict: "conflicts with the current state", Unavailable:
               "a dependency (platform, Ray, state store) did not answer"}


def status_for(error: DomainError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                               "schema": {"type": "integer"}}}


def raises(blp, *kinds: type[DomainError], **descriptions: str):
    """Document the error kinds a view can raise (their codes come from STATUS), each with
    the one error shape, so a generated client can read the message."""
    def decorate(view):
        for kind in kinds:
            code = STATUS[kind]
            view = blp.alt_response(code, schema=ErrorSchema, description=descriptions.get(
                kind.__name__.lower(), DESCRIPTION[kind]),
                headers=RETRY_AFTER if code == 429 else None)(view)
        return view
    return decorate


def http_error(api, code: int, message: str, errors: dict | None = None, headers: dict | None = None):
    exc = default_exceptions[code]()
    exc.data = {"message": message}
    if errors:
        exc.data["errors"] = errors
    if headers:
        exc.data["headers"] = headers
    return api.handle_http_exception(exc)


def register(app, api) -> None:
    def domain_error(error: DomainError):
        code = status_for(error)
        errors = {"json": {error.field: [str(error)]}} if error.field and code == 422 else None
        if code == 500:
            log.error("unmapped domain error: %s", error)
        headers = {"Retry-After": str(error.retry_after)} if code == 429 else None
        return http_error(api, code, str(error), errors, headers)

    app.register_error_handler(DomainError, domain_error)

    def unexpected(error):
        log.exception("unexpected error")
        return http_error(api, 500, "internal error (details are in the server log)")
    app.register_error_handler(Exception, unexpected)

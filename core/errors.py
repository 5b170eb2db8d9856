"""One error hierarchy for every layer. Messages are written for users and never carry a
secret; each edge maps the five kinds once (the API to HTTP status codes, the CLI to exit
codes), so a new error only has to pick its kind."""
from __future__ import annotations


class DomainError(Exception):
    """Base: something a user can act on, with a message fit to show as it is."""

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field  # the input field at fault, when there is one


class Invalid(DomainError):
    """Bad input the caller can correct (a request body, a config file, a flag)."""


class NotFound(DomainError):
    """The thing named does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state (a run holds the lease, no head, ...)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Unavailable(DomainError):
    """Something this depends on did not answer in time or failed (platform, Ray, disk)."""


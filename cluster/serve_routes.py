"""Which requests a Serve route prefix takes from the apps already there.

Serve's proxy sends a request to the app with the longest route prefix that matches it in
whole segments (``/api`` matches ``/api`` and ``/api/x``, not ``/apix``). So an app deployed
at a prefix inside the management API's prefix takes the API's requests under it: an app at
``/api/v1/approvals`` received approvers' requests, bearer tokens included. And an app at a
prefix under another app's (``/hello/admin`` under ``/hello``) takes that app's requests
there. The first is refused; the second replaces part of a running app, and is gated so.
"""
from __future__ import annotations

# Every path the management API serves, relative to its route prefix: its Flask rules
# (``<name>`` is one segment, ``<path:name>`` the rest). tests/api_server checks that this
# is exactly the app's URL map, so a new route cannot be left out.
MANAGEMENT_ROUTES = (
    "/api/v1/applications", "/api/v1/applications/<name>",
    "/api/v1/approvals", "/api/v1/approvals/<key>",
    "/api/v1/audit", "/api/v1/audit/verify",
    "/api/v1/checkpoints", "/api/v1/checkpoints/<name>",
    "/api/v1/cluster/health", "/api/v1/cluster/info", "/api/v1/cluster/status",
    "/api/v1/deployments", "/api/v1/deployments/<run_id>",
    "/api/v1/deployments/<run_id>/cancel", "/api/v1/deployments/<run_id>/events",
    "/api/v1/hosts/cleanup", "/api/v1/hosts/foreign-ray",
    "/api/v1/nodes",
    "/api/v1/notifications", "/api/v1/notifications/test",
    "/api/v1/plan",
    "/api/v1/resources/capacity", "/api/v1/resources/nodes",
    "/api/v1/resources/nodes/<app_id>", "/api/v1/resources/nodes/add",
    "/api/v1/whoami",
    "/docs", "/docs-assets/<path:name>", "/health", "/metrics", "/openapi.json", "/redoc",
    "/static/<path:filename>", "/ui", "/ui/", "/ui/<path:name>",
)


def normalized(prefix: str) -> str:
    """``/a/`` and ``/a`` are one prefix; the root stays ``/``."""
    return prefix.rstrip("/") or "/"


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def matches(prefix: str, rule: str) -> bool:
    """Whether some request to ``rule`` (a Flask rule) matches route ``prefix``."""
    rule_parts = _segments(rule)
    for i, part in enumerate(_segments(prefix)):
        if i >= len(rule_parts):
            return False
        if rule_parts[i].startswith("<path:"):
            return True  # the rest of the path, whatever it is
        if not rule_parts[i].startswith("<") and rule_parts[i] != part:
            return False
    return True


def management_paths_taken(prefix: str, management_prefix: str) -> list[str]:
    """The management API's paths an app at ``prefix`` would answer instead of it (the API
    at ``management_prefix``): its prefix itself, or the routes a longer prefix inside it
    matches."""
    new, mine = normalized(prefix), normalized(management_prefix)
    if new == mine:
        return [mine]
    base = "" if mine == "/" else mine
    if not new.startswith(base + "/"):
        return []  # outside the API's prefix, or a shorter one: the API keeps its requests
    rest = new[len(base):]
    return [base + rule for rule in MANAGEMENT_ROUTES if matches(rest, rule)]


def takes_traffic_of(prefix: str, other: str) -> bool:
    """Whether an app at ``prefix`` would answer requests an app at ``other`` answers now:
    a longer prefix inside it (the same prefix is a conflict of its own)."""
    new, theirs = normalized(prefix), normalized(other)
    return new != theirs and (theirs == "/" or new.startswith(theirs + "/"))


def describe_taken(paths: list[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")

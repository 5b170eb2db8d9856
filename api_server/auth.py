"""Which role each request needs: one table, easy to audit. Principals, roles and tokens are
``checkpoints.access`` (the CLI uses the same); the API authenticates callers by token."""
from __future__ import annotations

# The API's own documentation holds no cluster data: open, so a browser can show it.
DOCS = ("/docs", "/redoc", "/openapi.json")


def required_role(method: str, path: str) -> str | None:
    """The role a request needs; None for the open health probe and docs."""
    if path == "/health" or path in DOCS or path.startswith("/docs-assets/"):
        return None
    if path == "/ui" or path.startswith("/ui/"):  # the web inbox's own files: no data in them
        return None
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    if path.startswith("/api/v1/approvals"):
        return "approver"
    return "operator"

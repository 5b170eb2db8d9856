"""Helpers for the side-door tests: an API with tokens and roles over a store of its own."""
from __future__ import annotations

import pytest

from tests.api_server.conftest import awaiting, make_app, shown  # noqa: F401 - shared with these tests

TOKENS = ("root:admin:admin-token-0123456789,"
          "vera:viewer:viewer-token-0123456789,"
          "olga:operator:operator-token-01234567,"
          "alice:approver:alice-token-0123456789,"
          "bob:approver:bob-token-012345678901")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


OPERATOR = bearer("operator-token-01234567")
APPROVER = bearer("bob-token-012345678901")
VIEWER = bearer("viewer-token-0123456789")


@pytest.fixture
def secured(tmp_path):
    """(app, client, store) with tokens and forbid_self_approval on."""
    app = make_app(tmp_path, tokens=TOKENS, approvals={"forbid_self_approval": True})
    return app, app.test_client(), app.extensions["raydeploy"].store

"""Small helpers shared by the resources."""
from __future__ import annotations

from flask import current_app, g
from marshmallow import Schema, fields

from api_server.services import Services


def services() -> Services:
    return current_app.extensions["raydeploy"]


def auth_enabled() -> bool:
    return current_app.extensions["raydeploy.auth"].enabled


def actor(claimed: str | None, default: str = "api") -> str:
    """Who acts: the token's principal when auth is on (a body field is ignored)."""
    if g.get("principal") is not None:
        return g.principal.name
    return claimed or default


class ErrorSchema(Schema):
    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    errors = fields.Dict()


class StatusSchema(Schema):
    status = fields.String(required=True)

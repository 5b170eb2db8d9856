"""The management REST API: a thin Flask layer over checkpoints/ and ClusterManager.

    create_app(settings=None, config=None) -> Flask

Serve it with ``python -m api_server`` (development) or gunicorn (``api_server.wsgi:app``).
"""
from __future__ import annotations

import ipaddress
import logging

from flask import Flask, g, request
from flask_cors import CORS
from flask_smorest import Api

from api_server import errors
from api_server.auth import TokenAuth, required_role
from api_server.docs import blp as docs_blp
from api_server.resources import BLUEPRINTS
from api_server.services import Services
from api_server.settings import Settings
from api_server.spec_plugins import AuthResponsesPlugin
from cluster.config import Config, load_config
from core.errors import Invalid

log = logging.getLogger("api_server")
API_VERSION = "1.0.0"


class RaydeployApi(Api):
    def handle_http_exception(self, error):
        """flask-smorest's error shape, always with a message (webargs' 422 has none)."""
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            payload["message"] = ("the request has invalid fields: see errors" if code == 422
                                  else error.description)
        return payload, code, headers


class ApiSetupError(Invalid):
    """The server cannot start as configured (maps to exit code 2)."""


def create_app(settings: Settings | None = None, config: Config | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if config is None:
        config = load_config(settings.config_path, state_dir_override=settings.state_dir,
                             base_dir=settings.base_dir)
    auth = TokenAuth.load(settings.tokens, config.api.tokens_file)
    origins = list(config.api.cors_origins)
    if auth.enabled and "*" in origins:
        raise ApiSetupError("api.cors_origins may not be '*' while API auth is on")

    app = Flask(__name__)
    app.config.update(
        API_TITLE="raydeploy management API", API_VERSION=API_VERSION, OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL="docs-assets/swagger/",
        OPENAPI_REDOC_PATH="redoc", OPENAPI_REDOC_URL="docs-assets/redoc/redoc.standalone.js",
        API_SPEC_OPTIONS={
            "info": {"description": "Deploy and operate a Ray cluster through checkpoints, "
                                    "with approvals on risky steps."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}]},
    )
    api = RaydeployApi(app, spec_kwargs={"extra_plugins": [AuthResponsesPlugin()]})
    for blp in BLUEPRINTS:  # this order is also the tag order in the spec
        api.register_blueprint(blp)
    app.register_blueprint(docs_blp)
    errors.register(app, api)
    if origins:
        CORS(app, origins=origins, supports_credentials=False,
             allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"])

    app.extensions["raydeploy"] = Services(config, settings.status_cache_seconds)
    app.extensions["raydeploy.auth"] = auth

    @app.before_request
    def authenticate():
        g.principal = None
        role = required_role(request.method, request.path)
        if not auth.enabled or role is None or request.method == "OPTIONS":
            return None
        principal = auth.authenticate(request.headers.get("Authorization"))
        if principal is None:
            return errors.http_error(api, 401, "a valid bearer token is required",
                                     headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(role):
            return errors.http_error(api, 403, f"{principal.name} lacks the {role} role")
        g.principal = principal
        return None

    if not auth.enabled:
        log.warning("API auth is off: no tokens configured (RAYDEPLOY_API_TOKENS or "
                    "api.tokens_file); serve on loopback only")
    return app


def check_bind(host: str, auth_enabled: bool) -> None:
    """Without auth the API may only listen on loopback."""
    if auth_enabled:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ApiSetupError(f"refusing to listen on {host} without API auth: configure tokens "
                            f"or bind a loopback address")


__all__ = ["create_app", "check_bind", "ApiSetupError"]

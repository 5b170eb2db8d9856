"""The management REST API: a thin Flask layer over checkpoints/ and ClusterManager.

    create_app(settings=None, config=None) -> Flask

Serve it with ``python -m api_server`` (development) or gunicorn (``api_server.wsgi:app``).
"""
from __future__ import annotations

import ipaddress
import logging
import math

from flask import Flask, g, request
from flask_cors import CORS
from flask_smorest import Api
from werkzeug.exceptions import BadRequest, MethodNotAllowed, RequestEntityTooLarge

from api_server import errors, guards, metrics
from api_server.auth import FailedAuthLimiter, decision_attempt, required_role
from api_server.docs import blp as docs_blp
from api_server.resources import BLUEPRINTS
from api_server.services import Services
from api_server.settings import Settings
from api_server.spec_plugins import AuthResponsesPlugin, OperationIdPlugin
from api_server.ui import blp as ui_blp
from checkpoints import audit
from checkpoints.access import Actor, Principals, digest_salt, require_identities
from cluster.config import Config, load_config
from cluster.ray_address import RayAddress
from core.errors import Invalid

log = logging.getLogger("api_server")
API_VERSION = "1.0.0"


class RaydeployApi(Api):
    def _register_pagination_header(self):
        """No flask-smorest pagination here: its header (and schema) would sit unused in the
        spec."""

    def handle_http_exception(self, error):
        """flask-smorest's error shape, always with a message (webargs' 422 has none)."""
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            payload["message"] = ("the request has invalid fields: see errors" if code == 422
                                  else error.description)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:  # RFC 9110: say which
            headers = {**headers, "Allow": ", ".join(sorted(error.valid_methods))}
        return payload, code, headers


class ApiSetupError(Invalid):
    """The server cannot start as configured (maps to exit code 2)."""


def create_app(settings: Settings | None = None, config: Config | None = None,
               principals: Principals | None = None, listen_host: str | None = None) -> Flask:
    """The API. ``principals`` default to the config's tokens and RAYDEPLOY_API_TOKENS (the
    Serve replica passes the token digests it was given). ``listen_host``: where it will
    listen, so a non-loopback listener without tokens refuses to start (a port the platform
    publishes, ``settings.published_by``, is public whatever it binds). As the control plane
    (``settings.control_plane``) it owns the store and continues the run it was running."""
    settings = settings or Settings.from_env()
    if config is None:
        config = load_config(settings.config_path, state_dir_override=settings.state_dir,
                             base_dir=settings.base_dir)
    if principals is None:
        principals = Principals.load(settings.tokens, config.api.tokens_file, digest_salt(config),
                                     settings.environ.get("RAYDEPLOY_API_TOKEN_DIGESTS"))
    require_identities(config, principals)  # one identity without tokens: no distinct rules
    if listen_host is not None:
        check_listener(listen_host, principals.enabled, settings.published_by)

    app = Flask(__name__)
    app.config.update(
        API_TITLE="raydeploy management API", API_VERSION=API_VERSION, OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL="docs-assets/swagger/",
        OPENAPI_REDOC_PATH="redoc", OPENAPI_REDOC_URL="docs-assets/redoc/redoc.standalone.js",
        MAX_CONTENT_LENGTH=config.api.max_body_bytes,
        API_SPEC_OPTIONS={
            "info": {"description": "Deploy and operate a Ray cluster through checkpoints, "
                                    "with approvals on risky steps. " + auth_mode(principals),
                     # no open-source license has been chosen: the project is proprietary
                     "license": {"name": "Proprietary"}},
            "servers": [{"url": "/", "description": "the server that serves this spec"}],
            "components": {"securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "an API token (api.tokens_file, RAYDEPLOY_API_TOKENS)"}}},
            # the security scheme says how to authenticate; the served spec says whether
            # this server asks for it (no tokens: loopback only, nobody authenticates)
            "security": [{"bearerAuth": []}] if principals.enabled else []},
    )
    api = RaydeployApi(app, spec_kwargs={"extra_plugins": [AuthResponsesPlugin(),
                                                            OperationIdPlugin()]})
    for blp in BLUEPRINTS:  # this order is also the tag order in the spec
        api.register_blueprint(blp)
    app.register_blueprint(docs_blp)
    app.register_blueprint(ui_blp)
    errors.register(app, api)
    if config.api.cors_origins:
        CORS(app, origins=list(config.api.cors_origins), supports_credentials=False,
             allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
             expose_headers=["Idempotent-Replayed"])

    ray_address = (RayAddress.parse(settings.ray_address, token=settings.ray_auth_token)
                   if settings.ray_address else None)
    app.extensions["raydeploy"] = services = Services(
        config, settings.status_cache_seconds, sse_process_limit=settings.sse_process_limit,
        ray_address=ray_address, control_plane=settings.control_plane,
        public_url=settings.public_url, plan_cache_seconds=settings.plan_cache_seconds)
    app.extensions["raydeploy.principals"] = principals
    app.extensions["raydeploy.auth_failures"] = FailedAuthLimiter()
    metrics.install(app, lambda: app.extensions["raydeploy"].store)
    allowed_hosts = frozenset({*guards.LOOPBACK_NAMES, *(h.lower() for h in config.api.allowed_hosts)})
    bodiless = guards.bodiless_operations(api.spec.to_dict()["paths"])
    proxies = tuple(ipaddress.ip_network(n, strict=False) for n in config.api.trusted_proxies)

    def without_a_body_as_the_spec_allows(data: bytes) -> bool:
        """A mutation the spec declares no body for, sent with none (no Content-Type either),
        and not from another site's page."""
        return (not data and request.content_type is None and request.url_rule is not None
                and (request.method, request.url_rule.rule) in bodiless
                and not guards.cross_site(request.headers.get("Origin"), request.host,
                                          config.api.cors_origins))

    @app.before_request
    def guard():
        g.client_address = guards.client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For"), proxies)
        if not guards.host_allowed(request.host, allowed_hosts):
            return errors.http_error(api, 400, f"this API does not answer to the Host "
                                               f"{request.host!r} (api.allowed_hosts)")
        if request.routing_exception is not None:
            return None  # no route (404) or not this method (405, with Allow): no view reads it
        # every body a view could read, chunked ones (no Content-Length) included
        data = request.get_data(cache=True) if guards.may_carry_body(
            request.method, request.content_length, request.headers.get("Transfer-Encoding")) \
            else b""
        if request.content_length is None and len(data) >= config.api.max_body_bytes:
            raise RequestEntityTooLarge()  # a chunked body is cut at the limit, not refused
        if request.method in guards.MUTATING and not guards.is_json(request.content_type) \
                and not without_a_body_as_the_spec_allows(data):
            return errors.http_error(api, 415, "send the body as application/json (other "
                                               "content types are refused: no form posts)")
        if data and guards.json_depth(data) > guards.MAX_JSON_DEPTH:
            raise BadRequest(f"the JSON body nests deeper than {guards.MAX_JSON_DEPTH} levels")
        return None

    @app.before_request
    def authenticate():
        g.principal = None
        role = required_role(request.method, request.path)
        if request.path == "/metrics" and config.api.metrics_public:
            role = None
        if not principals.enabled or role is None or request.method == "OPTIONS":
            return None
        header = request.headers.get("Authorization") or ""
        token = header[7:].strip() if header.startswith("Bearer ") else None
        if not token:
            return errors.http_error(api, 401, "a valid bearer token is required",
                                     headers={"WWW-Authenticate": "Bearer"})
        failures, address = app.extensions["raydeploy.auth_failures"], g.client_address
        wait = failures.retry_after(address)
        if wait > 0:  # before the token is checked: guessing goes no faster than this
            return errors.http_error(api, 429, "too many failed authentications from this "
                                     "address: retry after Retry-After seconds",
                                     headers={"Retry-After": str(math.ceil(wait))})
        principal = principals.authenticate(token)
        if principal is None:
            wait = failures.failed(address)
            log.warning("failed authentication from %s (%s %s)%s", address, request.method,
                        request.path, f": refusing its tokens for {math.ceil(wait)} s"
                        if wait > 0 else "")  # never the token
            return errors.http_error(api, 401, "a valid bearer token is required",
                                     headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(role):
            refusal = f"{principal.name} lacks the {role} role"
            audit_refused_decision(principal, refusal)
            return errors.http_error(api, 403, refusal)
        g.principal = principal
        return None

    def audit_refused_decision(principal, reason: str) -> None:
        """Refused approve, reject and revoke attempts are audited too (never with a token)."""
        body = request.get_json(silent=True)
        attempt = decision_attempt(request.method, request.path, body)
        if attempt is None:
            return
        action, target, fingerprint = attempt
        claimed = body.get("approved_by") if isinstance(body, dict) else None
        caller = Actor(principal.name, "api", principal.roles, client_address=g.client_address,
                       claimed_name=claimed if isinstance(claimed, str) and claimed[:200]
                       != principal.name else None)
        audit.record(app.extensions["raydeploy"].store, caller, action, target, "refused",
                     plan_fingerprint=fingerprint, reason=reason)

    for warning in config.warnings:
        log.warning("config %s: %s", config.source, warning)
    if ray_address is not None:
        log.info("RAY_ADDRESS=%s: nodes, applications, status and health read that cluster",
                 ray_address.text)
    if not principals.enabled:
        log.warning("API auth is off: no tokens configured (RAYDEPLOY_API_TOKENS or "
                    "api.tokens_file); it may listen on loopback only")
    if settings.control_plane:
        resumed = services.runs.recover()
        if resumed is not None:
            log.warning("run %s continues: this control plane was stopped while it ran",
                        resumed.id)
    return app


def auth_mode(principals: Principals) -> str:
    """What the spec says of authentication on this server."""
    if principals.enabled:
        return ("Authentication: a bearer token (`Authorization: Bearer <token>`); roles viewer, "
                "operator, approver, admin.")
    return ("Authentication is off on this server: no API tokens are configured, so it listens "
            "on loopback only and its callers are `anonymous`.")


def check_listener(host: str, auth_enabled: bool, published_by: str | None = None) -> None:
    """Everywhere (dev server, gunicorn, the Serve replica): a listener that is not
    loopback-only needs tokens; so does one on a port the platform publishes
    (``published_by``: the variable that said so)."""
    if auth_enabled:
        return
    if published_by:
        raise ApiSetupError(f"refusing to serve on {host} without API tokens: the platform "
                            f"publishes this port ({published_by}: the app's public URL); "
                            f"configure api.tokens_file (or RAYDEPLOY_API_TOKENS)")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ApiSetupError(f"refusing to listen on {host} without API tokens: configure "
                            f"api.tokens_file (or RAYDEPLOY_API_TOKENS), or listen on a "
                            f"loopback address")


__all__ = ["create_app", "check_listener", "ApiSetupError"]

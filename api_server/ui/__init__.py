"""The web approval inbox at /ui: static files (no build step, no CDN) that use the public
REST API with the caller's bearer token, as any third-party UI would. The files hold no data,
so they are served without a token; every call they make needs one (when tokens are on).
A strict Content-Security-Policy allows only this origin's own scripts and styles."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

blp = Blueprint("ui", __name__, url_prefix="/ui")


@blp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("")
@blp.get("/")
def index():
    return send_from_directory(STATIC, "index.html")


@blp.get("/<path:name>")
def asset(name: str):
    return send_from_directory(STATIC, name)  # refuses paths outside STATIC (404)

"""Swagger UI and ReDoc assets served from installed packages, so /docs and /redoc work
offline (flask-smorest's defaults load them from a CDN)."""
from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, abort, send_file

blp = Blueprint("docs_assets", __name__)

SWAGGER = files("flask_openapi3_swagger") / "templates" / "swagger"
REDOC = files("flask_openapi3_redoc") / "templates" / "redoc"
ASSETS = {
    "swagger/swagger-ui.css": SWAGGER / "css" / "swagger-ui.css",
    "swagger/swagger-ui-bundle.js": SWAGGER / "js" / "swagger-ui-bundle.js",
    "swagger/swagger-ui-standalone-preset.js": SWAGGER / "js" / "swagger-ui-standalone-preset.js",
    "redoc/redoc.standalone.js": REDOC / "js" / "redoc.standalone.js",
}


@blp.route("/docs-assets/<path:name>")
def asset(name: str):
    path = ASSETS.get(name)
    if path is None:
        abort(404)
    return send_file(str(path), max_age=86400)

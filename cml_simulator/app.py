"""The CML API v2 subset we use, as a Flask app over a simulated Workspace.

Matches the service where it matters to a client: bearer auth, grpc-gateway error shape
``{error, code, message, details}`` for every error (a body of the wrong type is a 400, never
an HTML page), colon verbs (``:stop``), ``next_page_token`` pagination (page size 10),
``search_filter`` and ``sort`` as listing.py describes, ``environment`` as a map in create
requests and a JSON string in answers and PATCH bodies, int64 fields as strings. Faults can be
injected: an error rate (half of them after the request took effect, as when an answer is
lost), 429 with Retry-After, added latency, slow application start. A request rate limit can
be enforced (a token bucket over every API call, a second's worth of burst): a call over it is
answered 429 with the seconds until the next token in Retry-After, and takes no effect.
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from cml_simulator.bodies import check_body
from cml_simulator.common import RUNTIMES, USER, SimError
from cml_simulator.files import add_file_routes
from cml_simulator.listing import APP_STATUS_FILTER, RUN_STATUS_FILTER, page
from cml_simulator.state import Workspace, now_iso
from core.ratelimit import TokenBucket

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 502: 14, 503: 14}
# ValidateAPIKeyRequest.audience: what a key is checked for. An API v2 key is for "API";
# "Application" is for application tokens (an API key is refused for it: audience mismatch).
AUDIENCES = ("API", "Application")


@dataclass
class Faults:
    error_rate: float = 0.0  # share of API calls answered 500/502/503
    rate_limit_rate: float = 0.0  # share answered 429
    retry_after: float = 1.0  # seconds, in the 429's Retry-After
    latency: float = 0.0  # seconds added to every API call
    seed: int | None = None
    max_requests_per_second: float = 0.0  # over it: 429 (0: no limit)


def error(status: int, message: str, headers: dict | None = None):
    body = {"error": message, "code": GRPC_CODES.get(status, 2), "message": message, "details": []}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def body(definition: str) -> dict:
    """The request's JSON body, checked against the swagger ``definition`` (empty: ``{}``)."""
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise SimError(400, "the body must be JSON") from None
    return check_body(data, definition)


def listed(items: list[dict], key: str, statuses: dict | None = None):
    return jsonify(page(items, request.args, key, statuses))


def create_app(workspace: Workspace, faults: Faults | None = None) -> Flask:
    app = Flask(__name__)
    faults = faults or Faults()
    app.extensions["cml_workspace"] = workspace
    app.extensions["cml_faults"] = faults
    add_gate(app, workspace, faults)
    add_error_handlers(app)
    add_project_routes(app, workspace)
    add_job_routes(app, workspace)
    add_app_routes(app, workspace)
    add_file_routes(app, workspace)
    return app


def add_gate(app: Flask, ws: Workspace, faults: Faults) -> None:
    """The rate limit, auth, latency and injected faults in front of every API call;
    /_sim/counts behind none."""
    rng = random.Random(faults.seed)
    counts = app.extensions["cml_counts"] = {"requests": 0, "injected_errors": 0, "injected_429": 0,
                                             "answers_lost": 0, "rate_limited": 0}
    counting = threading.Lock()
    limit = faults.max_requests_per_second
    bucket = TokenBucket(limit) if limit else None

    def count(key: str) -> None:
        with counting:
            counts[key] += 1

    @app.before_request
    def gate():
        if not request.path.startswith("/api/v2/"):
            return None
        count("requests")
        wait = bucket.try_acquire() if bucket else 0.0
        if wait:
            count("rate_limited")
            return error(429, f"rate limit exceeded: at most {limit:g} requests per second",
                         {"Retry-After": f"{max(wait, 0.001):.3f}"})
        if faults.latency:
            time.sleep(faults.latency)
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {ws.api_key}":
            return error(401, "invalid or missing API key")
        roll = rng.random()
        if roll < faults.rate_limit_rate:
            count("injected_429")
            return error(429, "rate limit exceeded", {"Retry-After": str(faults.retry_after)})
        roll -= faults.rate_limit_rate
        if roll < faults.error_rate / 2:  # before the request takes effect
            count("injected_errors")
            return error(rng.choice([500, 502, 503]), "injected fault")
        request.environ["cml.fail_after"] = roll < faults.error_rate
        return None

    @app.after_request
    def lose_answer(response):
        if request.environ.get("cml.fail_after") and response.status_code < 400:
            count("injected_errors")
            count("answers_lost")  # of them: after the request took effect
            return error(503, "injected fault (the request took effect, its answer was lost)")
        return response

    @app.get("/_sim/counts")
    def sim_counts():
        """Not CML: what a test counts (projects, jobs, apps and injected faults)."""
        return jsonify({**counts, "projects": len(ws.projects), "jobs": len(ws.jobs),
                        "applications": len(ws.apps), "job_runs": len(ws.runs), "time": now_iso()})


def add_error_handlers(app: Flask) -> None:
    @app.errorhandler(SimError)
    def sim_error(e: SimError):
        return error(e.status, str(e))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 404:
            return error(404, f"no route {request.path}")
        if e.code == 405:
            return error(405, f"method {request.method} not allowed on {request.path}")
        return error(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def crash(e: Exception):  # still the JSON error shape: a client parses every answer
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, f"internal error ({type(e).__name__})")


def add_project_routes(app: Flask, ws: Workspace) -> None:
    @app.post("/api/v2/auth/validate_key")
    def validate_key():
        audience = body("ValidateAPIKeyRequest").get("audience") or ""
        if audience not in AUDIENCES:
            raise SimError(400, f"unknown audience {audience!r}: one of {', '.join(AUDIENCES)}")
        if audience != "API":
            raise SimError(403, f"audience mismatch: the key is an API key, not for {audience}")
        return jsonify({"valid": True, "username": USER["username"], "message": ""})

    @app.get("/api/v2/runtimes")
    def runtimes():
        return listed([dict(r) for r in RUNTIMES], "runtimes")

    @app.route("/api/v2/projects", methods=["GET", "POST"])
    def projects():
        if request.method == "POST":
            return jsonify(ws.create_project(body("CreateProjectRequest")))
        return listed([p.to_api() for p in list(ws.projects.values())], "projects")

    @app.route("/api/v2/projects/<project_id>", methods=["GET", "DELETE"])
    def project(project_id):
        if request.method == "DELETE":
            ws.delete_project(project_id)
            return jsonify({})
        return jsonify(ws.project(project_id).to_api())


def add_job_routes(app: Flask, ws: Workspace) -> None:
    @app.get("/api/v2/jobs")
    def all_jobs():  # ListAllJobs: every job of every project
        return listed([ws.job_api(j) for j in list(ws.jobs.values())], "jobs")

    @app.route("/api/v2/projects/<project_id>/jobs", methods=["GET", "POST"])
    def jobs(project_id):
        ws.project(project_id)
        if request.method == "POST":
            return jsonify(ws.create_job(project_id, body("CreateJobRequest")))
        return listed([ws.job_api(j) for j in list(ws.jobs.values()) if j["project_id"] == project_id],
                      "jobs")

    @app.route("/api/v2/projects/<project_id>/jobs/<job_id>", methods=["GET", "DELETE", "PATCH"])
    def job(project_id, job_id):
        if request.method == "PATCH":
            return jsonify(ws.update_job(project_id, job_id, body("Job")))
        if request.method == "DELETE":
            ws.delete_job(project_id, job_id)
            return jsonify({})
        return jsonify(ws.job_api(ws.job(project_id, job_id)))

    @app.route("/api/v2/projects/<project_id>/jobs/<job_id>/runs", methods=["GET", "POST"])
    def runs(project_id, job_id):
        ws.job(project_id, job_id)
        if request.method == "POST":
            return jsonify(ws.start_run(project_id, job_id, body("CreateJobRunRequest")))
        items = sorted((ws.run_api(r) for r in list(ws.runs.values()) if r["job_id"] == job_id),
                       key=lambda r: r["created_at"], reverse=True)
        return listed(items, "job_runs", RUN_STATUS_FILTER)

    @app.route("/api/v2/projects/<project_id>/jobs/<job_id>/runs/<run_ref>", methods=["GET", "POST"])
    def job_run(project_id, job_id, run_ref):
        run_id, _, verb = run_ref.partition(":")
        if request.method == "POST":
            if verb != "stop":
                raise SimError(404, f"no route {request.path}")
            return jsonify(ws.stop_run(project_id, job_id, run_id))
        if verb:
            raise SimError(404, f"no route {request.path}")
        return jsonify(ws.run_api(ws.run(project_id, job_id, run_id)))


def add_app_routes(app: Flask, ws: Workspace) -> None:
    @app.route("/api/v2/projects/<project_id>/applications", methods=["GET", "POST"])
    def applications(project_id):
        ws.project(project_id)
        if request.method == "POST":
            return jsonify(ws.create_app(project_id, body("CreateApplicationRequest")))
        return listed([ws.app_api(a) for a in list(ws.apps.values()) if a["project_id"] == project_id],
                      "applications", APP_STATUS_FILTER)

    @app.route("/api/v2/projects/<project_id>/applications/<app_ref>",
               methods=["GET", "DELETE", "PATCH", "POST"])
    def application(project_id, app_ref):
        app_id, _, verb = app_ref.partition(":")
        if request.method == "POST":
            if verb == "stop":
                return jsonify(ws.stop_app(project_id, app_id))
            if verb == "restart":
                return jsonify(ws.restart_app(project_id, app_id))
            raise SimError(404, f"no route {request.path}")
        if verb:
            raise SimError(404, f"no route {request.path}")
        if request.method == "PATCH":
            return jsonify(ws.update_app(project_id, app_id, body("Application")))
        if request.method == "DELETE":
            ws.delete_app(project_id, app_id)
            return jsonify({})
        return jsonify(ws.app_api(ws.app(project_id, app_id)))

"""An API app on a store of its own, with no cluster: fast tests of the HTTP contract.

Its test client checks every answer against the spec: a status code the spec does not list
for that operation fails the test, so the spec documents exactly what the code answers."""
from __future__ import annotations

import re
from functools import cache

import pytest
from flask.testing import FlaskClient

from api_server import create_app
from api_server.settings import Settings
from checkpoints.plan import Action, Kind, Plan
from cluster.config import parse_config


@cache
def documented() -> list[tuple[re.Pattern, str, frozenset[str]]]:
    """(path regex, method, documented status codes) of every operation in the spec."""
    import yaml

    from api_server.spec import SPEC
    spec = yaml.safe_load(SPEC.read_text())
    out = []
    for path, operations in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in operations.items():
            if method != "parameters":
                out.append((pattern, method.upper(), frozenset(operation["responses"])))
    return out


class SpecCheckedClient(FlaskClient):
    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        api_call = request.path.startswith("/api/") or request.path == "/health"
        if api_call and request.method != "OPTIONS":  # CORS preflights are not operations
            codes = [c for p, m, c in documented() if m == request.method and p.match(request.path)]
            assert codes, f"{request.method} {request.path} is not in the spec"
            assert str(response.status_code) in codes[0], (
                f"{request.method} {request.path} answered {response.status_code}, "
                f"the spec documents {sorted(codes[0])}")
        return response


def make_app(tmp_path, tokens: str | None = None, **config_extra):
    """A safe app: its project dir is empty, so no checkpoint can start a real node."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    doc = {"state_dir": str(tmp_path / "state"), "project_dir": str(project),
           "jobs_config": str(project / "missing-jobs.yaml"), "cluster_name": "apitest",
           "ray": {"version": "0.0.0"}, **config_extra}
    config = parse_config(doc, environ={})
    app = create_app(Settings(tokens=tokens, status_cache_seconds=0), config)
    app.test_client_class = SpecCheckedClient
    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["raydeploy"].store


def awaiting(store, checkpoint="worker_launch", fingerprint="fp1", destructive=True,
             requester="alice"):
    run = store.runs.create_run("deploy", [checkpoint], requester, "cli", status="awaiting_approval")
    plan = Plan(checkpoint, (Action(Kind.DELETE, "worker", "w-2", {"drain": True}),))
    store.approvals.open_approval_request(run.id, checkpoint, fingerprint, plan.to_dict(), destructive,
                                ["destructive: delete worker"], requester)
    return run.id


def shown(store, checkpoint="worker_launch") -> dict:
    """What an approver is shown of the gate at ``checkpoint`` and names in its decision:
    the run and plan awaiting approval there."""
    request = store.approvals.open_request_for(checkpoint)
    return {"run_id": request.run_id, "plan_fingerprint": request.fingerprint}

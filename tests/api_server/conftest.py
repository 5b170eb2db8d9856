"""An API app on a store of its own, with no cluster: fast tests of the HTTP contract."""
from __future__ import annotations

import pytest

from api_server import create_app
from api_server.settings import Settings
from cluster.config import parse_config


def make_app(tmp_path, tokens: str | None = None, **config_extra):
    """A safe app: its project dir is empty, so no checkpoint can start a real node."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    doc = {"state_dir": str(tmp_path / "state"), "project_dir": str(project),
           "jobs_config": str(project / "missing-jobs.yaml"), "cluster_name": "apitest",
           "ray": {"version": "0.0.0"}, **config_extra}
    config = parse_config(doc, environ={})
    return create_app(Settings(tokens=tokens, status_cache_seconds=0), config)


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
    run = store.create_run("deploy", [checkpoint], requester, "cli", status="awaiting_approval")
    store.open_approval_request(run["id"], checkpoint, fingerprint,
                                {"checkpoint": checkpoint, "actions": [{"kind": "delete"}]},
                                destructive, ["destructive: delete worker"], requester)
    return run["id"]

"""Operations verify as checkpoints do (checkpoints/operations.py): a deployed app counts only
once it runs, every replica placed; one that fits on no node fails the operation with Ray's
reason, named by replica."""
from __future__ import annotations

import time

from checkpoints.operations import AppDeploy
from tests.fakes import world

ENTRY = {"name": "big", "import_path": "examples.apps.hello:app", "route_prefix": "/big"}
UNSCHEDULABLE = ("Deployment 'Big' in application 'big' has 1 replicas that have taken more "
                 "than 30s to be scheduled. Resources required for each replica: {\"CPU\": 2.0}, "
                 "total resources available: {\"CPU\": 1.8}.")


SERVE = {"applications": [], "management_api": {"enabled": False}, "verify_timeout_seconds": 1}


def deploying(w, state: str, message: str = ""):
    w.ray.app("big", "/big", status="DEPLOYING")
    w.ray.serve["big"]["deployments"] = {"Big": {"message": message, "replicas": [
        {"replica_id": "big#Big#r1", "state": state, "start_time_s": time.time() - 40}]}}


def test_an_app_whose_replica_fits_on_no_node_fails_naming_the_replica_and_rays_reason(tmp_path):
    w = world(tmp_path, serve=SERVE)
    deploying(w, "PENDING_ALLOCATION", UNSCHEDULABLE)
    started = time.monotonic()
    problems = AppDeploy(entry=ENTRY).verify(w.ctx)
    assert time.monotonic() - started < 10  # verify_timeout_seconds bounds the wait
    [problem] = problems
    assert problem.startswith("application big is DEPLOYING after 1s: replica big#Big#r1 of "
                              "Big is PENDING_ALLOCATION for ")
    assert "total resources available" in problem


def test_an_app_that_runs_passes(tmp_path):
    w = world(tmp_path, serve=SERVE)
    w.ray.app("big", "/big")  # RUNNING
    assert AppDeploy(entry=ENTRY).verify(w.ctx) == []


def test_an_app_serve_never_took_is_said(tmp_path):
    w = world(tmp_path, serve=SERVE)
    assert AppDeploy(entry=ENTRY).verify(w.ctx) == ["application big was not accepted by Serve"]

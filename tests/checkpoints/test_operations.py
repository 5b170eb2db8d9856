"""Operations verify as checkpoints do (checkpoints/operations.py): a deployed app counts only
once it runs, every replica placed; one that fits on no node fails the operation with Ray's
reason, named by replica."""
from __future__ import annotations

import time

import pytest

from checkpoints.operations import AppDeploy
from tests.fakes import summary, world

ENTRY = {"name": "big", "import_path": "examples.apps.hello:app", "route_prefix": "/big"}
UNSCHEDULABLE = ("Deployment 'Big' in application 'big' has 1 replicas that have taken more "
                 "than 30s to be scheduled. Resources required for each replica: {\"CPU\": 2.0}, "
                 "total resources available: {\"CPU\": 1.8}.")


SERVE = {"applications": [], "management_api": {"enabled": False}, "verify_timeout_seconds": 1,
         "allowed_import_prefixes": ["examples.apps"]}


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


def fragments(w) -> str:
    """Five 1-CPU workers with 1.8 CPU free in all: 0.8 on the first (its address is
    returned), 0.25 on each other; the head full."""
    apps = [w.platform.add_app(f"rd-worker-{i + 1}", 1, 1) for i in range(5)]
    for app in apps:
        w.ray.replica(w.ray.node(app), "busy", cpu=0.2 if app is apps[0] else 0.75)
    w.ray.replica(w.head_node, "busy", cpu=1.0)
    return apps[0].ip


def test_the_plan_says_node_by_node_where_new_replicas_go_and_what_fits_nowhere(tmp_path):
    w = world(tmp_path, serve=SERVE)
    roomy = fragments(w)
    two = AppDeploy(entry=ENTRY, overrides={"num_replicas": 2,
                                            "ray_actor_options": {"num_cpus": 0.5}})
    [action] = two.plan(w.ctx).actions
    assert action.impact["placement"] == {roomy: 1}  # the 0.8 CPU free: one of 0.5
    assert action.impact["notes"][0] == f"places 1 of 2 replicas: 1 on {roomy}"
    assert action.impact["notes"][1] == "DOES NOT FIT: big needs 1 x 0.5 CPU, 0.3 CPU free on any node"
    small = AppDeploy(entry=ENTRY, overrides={"num_replicas": 3,
                                              "ray_actor_options": {"num_cpus": 0.25}})
    [action] = small.plan(w.ctx).actions
    assert sum(action.impact["placement"].values()) == 3 and len(action.impact["notes"]) == 1
    default = AppDeploy(entry=ENTRY)  # nothing said: Serve's 1 CPU, said to be assumed
    [action] = default.plan(w.ctx).actions
    assert "DOES NOT FIT: big needs 1 x 1 CPU" in action.impact["notes"][1]
    assert "Serve's default" in action.impact["notes"][2]


def test_replicas_whose_stated_resources_fit_nowhere_are_refused_before_anything_is_submitted(tmp_path):
    from checkpoints.operations import DoesNotFit
    w = world(tmp_path, serve=SERVE)
    fragments(w)
    five = AppDeploy(entry=ENTRY, overrides={"num_replicas": 5,
                                             "ray_actor_options": {"num_cpus": 1}})
    with pytest.raises(DoesNotFit, match=r"big needs 5 x 1 CPU, 0.8 CPU free on any node: "
                                         r"nothing was submitted"):
        five.precheck(w.ctx)
    assert w.ray.serve.get("big") is None  # Serve was never asked
    AppDeploy(entry=ENTRY).precheck(w.ctx)  # what the code asks is not known: not refused


def test_a_resumed_node_add_waits_for_the_worker_it_started_instead_of_adding_another(tmp_path):
    from checkpoints.operations import NodeAdd
    from cluster.lifecycle import added_by_note
    w = world(tmp_path)
    add = NodeAdd(cpu=1, memory=1, gpus=0)
    w.ctx.run_id = "run-1"
    assert summary(add.plan(w.ctx)) == [("create", "None")]
    app = w.platform.add_app("rd-worker-1")
    w.platform.apps[app.id] = app.__class__(**{**app.__dict__, "spec": app.spec.__class__(
        **{**app.spec.__dict__, "description": f"Ray worker {added_by_note('run-1')}"})})
    assert summary(add.plan(w.ctx)) == [("wait", "rd-worker-1")]

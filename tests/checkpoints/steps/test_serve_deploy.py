"""serve_deploy's plan against a fake platform and a fake Ray dashboard: what it creates,
updates, replaces, deletes and keeps, and what it waits for (submitted, not reached yet)."""
from __future__ import annotations

from tests.fakes import CONFIGURED, summary, world


def test_a_configured_app_that_does_not_run_is_created(tmp_path):
    w = world(tmp_path)
    assert summary(w.plan("serve_deploy")) == [("create", "hello")]


def test_a_running_app_with_the_same_config_is_left_alone(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    assert w.plan("serve_deploy").empty


def test_changed_args_update_a_running_app_without_a_destructive_gate(tmp_path):
    w = world(tmp_path, apps=({**CONFIGURED, "args": {"greeting": "hi"}},))
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    plan = w.plan("serve_deploy")
    assert summary(plan) == [("update", "hello")] and not plan.destructive


def test_a_changed_import_path_replaces_the_app(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.old:app")
    plan = w.plan("serve_deploy")
    assert summary(plan) == [("replace", "hello")] and plan.destructive


def test_a_failed_app_with_the_same_config_is_redeployed(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app", status="DEPLOY_FAILED")
    plan = w.plan("serve_deploy")
    assert summary(plan) == [("replace", "hello")]
    assert plan.actions[0].details["why"] == "DEPLOY_FAILED"


def test_an_app_this_checkpoint_deployed_and_the_config_dropped_is_deleted(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app("old", "/old")
    w.ctx.store.kv.set("serve.managed", ["hello", "old"])
    assert summary(w.plan("serve_deploy")) == [("delete", "old")]


def test_an_app_deployed_through_the_api_is_kept(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app("api-app", "/api-app")
    w.ctx.store.kv.set("serve.managed", ["hello"])
    assert w.plan("serve_deploy").empty


def test_an_app_submitted_but_still_deploying_is_waited_for(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app", status="DEPLOYING")
    plan = w.plan("serve_deploy")
    assert summary(plan) == [("wait", "hello")] and plan.actions[0].details["state"] == "DEPLOYING"
    assert not plan.destructive


def test_an_app_running_but_not_answering_yet_is_waited_for(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.silent.add("/hello")
    assert summary(w.plan("serve_deploy")) == [("wait", "hello")]
    w.ray.silent.clear()
    assert w.plan("serve_deploy").empty

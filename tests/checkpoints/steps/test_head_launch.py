"""head_launch's plan against a fake platform and a fake Ray dashboard: a head created,
kept, replaced (and what that breaks), cleaned up, or waited for."""
from __future__ import annotations

from tests.fakes import summary, world


def test_a_missing_head_is_created_with_no_gpus(tmp_path):
    w = world(tmp_path, with_head=False)
    plan = w.plan("head_launch")
    assert summary(plan) == [("create", "rd-head")] and plan.actions[0].details["gpus"] == 0


def test_a_healthy_head_with_the_configured_resources_is_left_alone(tmp_path):
    assert world(tmp_path).plan("head_launch").empty


def test_a_head_with_other_resources_is_replaced_and_breaks_apps_not_in_the_config(tmp_path):
    w = world(tmp_path, head_cpu=2)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app("api-app", "/api-app")
    plan = w.plan("head_launch")
    action = plan.actions[0]
    assert summary(plan) == [("replace", "rd-head")] and plan.destructive
    assert action.breaks == ["api-app"]  # hello comes back with serve_deploy; api-app does not
    assert any("never re-deployed: api-app" in n for n in action.impact["notes"])


def test_a_head_whose_dashboard_does_not_answer_is_replaced(tmp_path):
    w = world(tmp_path)
    w.ray.healthy = False
    plan = w.plan("head_launch")
    assert summary(plan) == [("replace", "rd-head")]
    assert "does not answer" in plan.actions[0].details["why"]


def test_a_failed_head_is_cleaned_up_and_created_again(tmp_path):
    w = world(tmp_path, with_head=False)
    w.platform.add_app("rd-head", status="failed")
    plan = w.plan("head_launch")
    assert summary(plan) == [("create", "rd-head")]
    assert plan.actions[0].details["previous"] == "failed app cleaned up"


def test_a_head_started_moments_ago_that_is_not_up_yet_is_waited_for(tmp_path):
    from dataclasses import replace
    w = world(tmp_path)
    head = next(a for a in w.platform.apps.values() if a.name == "rd-head")
    w.platform.apps[head.id] = replace(head, created_at=w.ctx.clock.time() - 5)
    w.ray.healthy = False
    assert summary(w.plan("head_launch")) == [("wait", "rd-head")]

"""project_setup against a fake platform: a project is found, created, or waited for while
the platform still makes it (a CML git clone); one that stays "creating" past the platform's
timeout, or ends otherwise, fails the checkpoint naming it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Kind
from cluster.platforms.records import Project
from tests.fakes import FakeClock, summary, world


def test_a_missing_project_is_created_and_an_existing_one_left_alone(tmp_path):
    w = world(tmp_path)
    plan = w.plan("project_setup")
    assert summary(plan) == [("create", "rd")] and plan.actions[0].details == {"platform": "fake"}
    w.ctx.platform.create_project("rd")
    plan = w.plan("project_setup")
    assert plan.empty and plan.notes == ("project rd exists (proj-1)",)


def test_a_project_still_being_made_is_waited_for_not_made_again(tmp_path):
    w = world(tmp_path)
    w.platform.project = Project(id="proj-9", name="rd", status="creating")
    plan = w.plan("project_setup")
    assert [(a.kind, a.details) for a in plan.actions] == [(Kind.WAIT, {"id": "proj-9"})]


def test_a_project_that_stays_creating_past_the_timeout_fails_naming_it(tmp_path):
    from checkpoints import BY_NAME
    w = world(tmp_path)
    w.platform.project = Project(id="proj-9", name="rd", status="creating")
    w.platform.project_timeout_seconds = 30
    w.ctx.clock = clock = FakeClock()  # its waits take no time
    step = BY_NAME["project_setup"]
    with pytest.raises(CheckpointFailed, match=r"project rd \(proj-9\) still creating after 30s"):
        step.apply(w.ctx, step.plan(w.ctx))
    assert clock.slept >= 30
    w.platform.project = replace(w.platform.project, status="failure")
    with pytest.raises(CheckpointFailed, match="creation ended failure"):
        step.apply(w.ctx, step.plan(w.ctx))

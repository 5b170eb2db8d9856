"""teardown against a fake platform: its plan deletes every app of this cluster (and nothing
of another's), always destructive; applied, nothing of the cluster is left and the record
of the Serve apps it deployed goes with the head."""
from __future__ import annotations

from checkpoints import BY_NAME
from checkpoints.steps.serve_deploy import MANAGED_KEY
from tests.fakes import summary, world


def test_the_plan_deletes_every_app_of_the_cluster_and_nothing_else(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.platform.add_app("someone-elses-head")
    plan = w.plan("teardown")
    assert summary(plan) == [("delete", "rd-head"), ("delete", "rd-worker-1")]
    assert plan.destructive


def test_applied_nothing_of_the_cluster_is_left(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.ctx.store.kv.set(MANAGED_KEY, ["hello"])
    step = BY_NAME["teardown"]
    step.apply(w.ctx, step.plan(w.ctx))
    assert step.verify(w.ctx) == [] and w.plan("teardown").empty
    assert w.ctx.store.kv.get(MANAGED_KEY) is None

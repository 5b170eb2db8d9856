"""WorkerLaunch.apply against the in-memory platform: a worker whose start ends (Ray's start
timed out on a busy host, say) is started once more; twice is a failure naming it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from checkpoints import BY_NAME
from checkpoints.plan import Kind
from cluster.lifecycle import NodeFailed
from tests.fakes import summary, world


def flaky_starts(w, failures: int):
    """The next ``failures`` created apps end as they start; the rest join Ray."""
    create, left = w.platform.create_app, [failures]

    def create_app(spec):
        app = create(spec)
        if left[0] > 0:
            left[0] -= 1
            w.platform.apps[app.id] = replace(app, status="failed")
        else:
            w.ray.node(app)
        return app
    w.platform.create_app = create_app


def worker_names(w):
    return sorted(a.name for a in w.platform.apps.values() if "worker" in a.name)


def test_a_worker_that_ends_while_starting_is_started_once_more(tmp_path):
    w = world(tmp_path, apps=())  # no Serve apps: verify is about the workers
    flaky_starts(w, failures=1)
    launch = BY_NAME["worker_launch"]
    launch.apply(w.ctx, launch.plan(w.ctx))
    assert len(worker_names(w)) == 2
    assert all(a.status == "running" for a in w.platform.apps.values())
    assert launch.verify(w.ctx) == []


def test_a_worker_that_ends_twice_fails_the_checkpoint_naming_it(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    flaky_starts(w, failures=2)
    launch = BY_NAME["worker_launch"]
    with pytest.raises(NodeFailed, match=r"node app rd-worker-\d+ is failed"):
        launch.apply(w.ctx, launch.plan(w.ctx))


def test_workers_are_created_when_none_run(tmp_path):
    w = world(tmp_path)
    assert summary(w.plan("worker_launch")) == [("create", "2")]


def test_new_workers_name_the_machines_they_take_where_the_platform_chooses_them(tmp_path):
    w = world(tmp_path)
    assert "hosts" not in w.plan("worker_launch").actions[0].details  # none chosen: none said
    asked = []
    w.platform.hosts_for_workers = lambda count, leaving=(): asked.append(
        (count, [a.name for a in leaving])) or ["gpu-1"]
    assert w.plan("worker_launch").actions[0].details["hosts"] == "gpu-1 (only 1 free)"
    assert asked == [(2, [])]


def test_new_workers_take_the_machines_of_the_workers_that_go_first(tmp_path):
    w = world(tmp_path, workers={"count": 1, "cpu": 2})  # the running worker is replaced
    w.worker(1)
    w.platform.hosts_for_workers = lambda count, leaving=(): [f"freed-by-{a.name}" for a in leaving]
    create = next(a for a in w.plan("worker_launch").actions if a.kind == "create")
    assert create.details["hosts"] == "freed-by-rd-worker-1"


def test_nothing_to_do_when_the_workers_run_and_are_alive(tmp_path):
    w = world(tmp_path)
    w.worker(1), w.worker(2)
    assert w.plan("worker_launch").empty


def test_more_workers_are_added_without_touching_the_others(tmp_path):
    w = world(tmp_path, workers={"count": 3})
    w.worker(1), w.worker(2)
    plan = w.plan("worker_launch")
    assert summary(plan) == [("create", "1")] and not plan.destructive


def test_fewer_workers_remove_the_least_busy_newest_one_and_say_why(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    _, busy = w.worker(1)
    w.worker(2)
    w.ray.replica(busy, "api-app")
    plan = w.plan("worker_launch")
    assert summary(plan) == [("delete", "rd-worker-2")]  # not the highest-numbered by rule
    action = plan.actions[0]
    assert action.destructive and not action.breaks
    assert "least impact" in action.impact["notes"][0]


def test_a_removal_names_the_machine_where_the_platform_names_one(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    w.worker(1)
    w.worker(2)
    assert "host" not in w.plan("worker_launch").actions[0].details  # none named: none said
    w.platform.host_of = lambda app: f"rack-{app.name[-1]}"  # as the ssh platform's inventory
    action = w.plan("worker_launch").actions[0]
    assert action.details["host"] == f"rack-{action.name[-1]}"


def test_the_idle_worker_goes_even_when_it_is_the_oldest(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    w.worker(1)
    _, newer = w.worker(2)
    w.ray.replica(newer, "api-app", cpu=0.5)
    assert summary(w.plan("worker_launch")) == [("delete", "rd-worker-1")]


def test_a_failed_worker_is_cleaned_up_and_replaced(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.worker(2, status="failed")
    assert summary(w.plan("worker_launch")) == [("cleanup", "rd-worker-2"), ("create", "1")]


def test_a_worker_started_but_not_alive_yet_is_waited_for(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.worker(2, alive=False)
    plan = w.plan("worker_launch")
    assert summary(plan) == [("wait", "None")]
    assert plan.actions[0].details["not_alive"] == ["rd-worker-2"]


def test_changed_resources_replace_every_worker(tmp_path):
    w = world(tmp_path, workers={"cpu": 2})
    w.worker(1), w.worker(2)
    plan = w.plan("worker_launch")
    assert sorted(summary(plan)) == [
        ("create", "2"), ("replace", "rd-worker-1"), ("replace", "rd-worker-2")]


def test_changed_resources_and_fewer_workers_replace_only_what_is_wanted(tmp_path):
    # the bug: this planned "replace 2 + create 2" when 1 worker is wanted
    w = world(tmp_path, workers={"cpu": 2, "count": 1})
    w.worker(1), w.worker(2)
    plan = w.plan("worker_launch")
    kinds = sorted(str(a.kind) for a in plan.actions)
    assert kinds == ["create", "delete", "replace"]
    assert next(a for a in plan.actions if a.kind == Kind.CREATE).details["count"] == 1


def test_a_matching_worker_stays_and_a_mismatched_one_goes(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    w.worker(1)
    w.worker(2, cpu=4)
    assert summary(w.plan("worker_launch")) == [("delete", "rd-worker-2")]


def test_removing_a_worker_whose_replica_fits_elsewhere_is_not_breaking(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    _, n1 = w.worker(1)
    _, n2 = w.worker(2)
    w.ray.replica(n1, "api-app", cpu=1)
    w.ray.replica(n2, "api-app", cpu=0.5)  # n2 is the cheaper one... both host one replica
    plan = w.plan("worker_launch")
    action = plan.actions[0]
    assert action.impact["replicas"] and not action.breaks  # 0.5 CPU fits on the head


def test_removing_a_worker_whose_replicas_fit_nowhere_is_breaking_with_numbers(tmp_path):
    # the scenario of the issue: an app that fits only while both workers exist
    w = world(tmp_path, workers={"count": 1})
    _, n1 = w.worker(1)
    _, n2 = w.worker(2)
    w.ray.replica(n1, "sentiment", cpu=1)
    w.ray.replica(n2, "sentiment", cpu=1)
    w.ray.replica(w.head_node, "hello", cpu=0.2)
    plan = w.plan("worker_launch")
    action = plan.actions[0]
    assert action.breaks == ["sentiment"] and plan.breaking
    assert action.impact["shortfalls"] == [
        "sentiment needs 1 x 1 CPU, 0.8 CPU free on any remaining node"]
    gate = BY_NAME["worker_launch"].gate(plan, w.ctx.config)
    assert gate.breaking and gate.risk == "breaking"
    assert any(r.startswith("BREAKING") for r in gate.reasons)


def test_a_stopped_worker_is_cleaned_up_when_none_are_wanted(tmp_path):
    w = world(tmp_path, workers={"count": 0})
    w.worker(1, status="stopped")
    assert summary(w.plan("worker_launch")) == [("cleanup", "rd-worker-1")]


def test_workers_of_a_replaced_head_are_cleaned_up_and_started_again(tmp_path):
    from dataclasses import replace
    w = world(tmp_path)
    w.worker(1, alive=False)  # started for the head that a crashed replace stopped
    head = next(a for a in w.platform.apps.values() if a.name == "rd-head")
    w.platform.apps[head.id] = replace(head, created_at=100.0)  # the new head, started after it
    app, _ = w.worker(2)
    w.platform.apps[app.id] = replace(app, created_at=101.0)
    assert summary(w.plan("worker_launch")) == [("cleanup", "rd-worker-1"), ("create", "1")]

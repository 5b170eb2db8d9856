"""Each checkpoint's plan(), table-driven against a fake platform and a fake Ray dashboard
(the real planners, the real inventory and Serve manager; only the world is in memory)."""
from __future__ import annotations

from checkpoints import BY_NAME
from checkpoints.plan import Kind
from cluster.layout import LAYOUT_KEY
from tests.fakes import CONFIGURED, JOBS, job_world, succeed_all, world


def summary(plan) -> list[tuple[str, str | None]]:
    return [(str(a.kind), a.name or str(a.details.get("count"))) for a in plan.actions]


# -- worker_launch -------------------------------------------------------------------------------
def test_workers_are_created_when_none_run(tmp_path):
    w = world(tmp_path)
    assert summary(w.plan("worker_launch")) == [("create", "2")]


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


# -- serve_deploy --------------------------------------------------------------------------------
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


# -- head_launch ---------------------------------------------------------------------------------
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


# -- job_creation --------------------------------------------------------------------------------
def test_jobs_are_created_and_run_parents_first(tmp_path):
    w = job_world(tmp_path)
    plan = w.plan("job_creation")
    assert summary(plan) == [("create", "a"), ("run", "a"), ("create", "b"), ("run", "b")]
    assert not BY_NAME["job_creation"].gate(plan, w.ctx.config).required


def test_jobs_that_succeeded_for_their_spec_are_skipped(tmp_path):
    w = job_world(tmp_path)
    from checkpoints.steps.job_creation import desired_jobs
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    assert w.plan("job_creation").empty


def test_a_changed_job_is_updated_behind_a_gate_and_run_again(tmp_path):
    w = job_world(tmp_path)
    from checkpoints.steps.job_creation import desired_jobs
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    (tmp_path / "jobs.yaml").write_text(JOBS.replace("parent_job_key: a}", "parent_job_key: a, "
                                                     "timeout: 5}"))
    plan = w.plan("job_creation")
    assert summary(plan) == [("update", "b"), ("run", "b")]
    gate = BY_NAME["job_creation"].gate(plan, w.ctx.config)
    assert gate.required and not gate.destructive and "job b" in gate.reasons[0]


def test_forcing_reruns_jobs_that_already_succeeded(tmp_path):
    w = job_world(tmp_path)
    from checkpoints.steps.job_creation import desired_jobs
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    w.ctx.force = True
    plan = w.plan("job_creation")
    assert summary(plan) == [("run", "a"), ("run", "b")]
    assert all(a.details["forced"] for a in plan.actions)



# -- submitted, not reached yet (e.g. a run that crashed): plan a wait, never "satisfied" ----------
def test_a_head_started_moments_ago_that_is_not_up_yet_is_waited_for(tmp_path):
    from dataclasses import replace
    w = world(tmp_path)
    head = next(a for a in w.platform.apps.values() if a.name == "rd-head")
    w.platform.apps[head.id] = replace(head, created_at=w.ctx.clock.time() - 5)
    w.ray.healthy = False
    assert summary(w.plan("head_launch")) == [("wait", "rd-head")]


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


def test_a_job_run_still_going_for_the_same_spec_is_waited_for_not_started_again(tmp_path):
    from checkpoints.steps.job_creation import desired_jobs
    w = job_world(tmp_path)
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    first = next(j for j in w.platform.jobs.values() if j.name == "a")
    going = w.platform.start_job_run(first.id, w.platform.runs[first.id][0].spec_hash)
    plan = w.plan("job_creation")
    assert summary(plan) == [("wait", "a")] and plan.actions[0].details["run"] == going.id


def test_workers_of_a_replaced_head_are_cleaned_up_and_started_again(tmp_path):
    from dataclasses import replace
    w = world(tmp_path)
    w.worker(1, alive=False)  # started for the head that a crashed replace stopped
    head = next(a for a in w.platform.apps.values() if a.name == "rd-head")
    w.platform.apps[head.id] = replace(head, created_at=100.0)  # the new head, started after it
    app, _ = w.worker(2)
    w.platform.apps[app.id] = replace(app, created_at=101.0)
    assert summary(w.plan("worker_launch")) == [("cleanup", "rd-worker-1"), ("create", "1")]


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


def test_a_new_worker_never_gets_a_port_the_head_will_bind_later(tmp_path):
    # the Serve proxy binds serve_port only at serve_deploy: a worker started before must not
    # take it (seen: "Failed to bind to address ...", the proxy never came up)
    from cluster.layout import PortLayout, ray_args
    from cluster.ports import pick_port
    w = world(tmp_path)
    layout = PortLayout(w.ctx.config, w.ctx.store)
    first_free = pick_port(0, set(), layout.offset)  # what a worker would be given first
    w.ctx.store.kv.set(LAYOUT_KEY, {**w.ctx.store.kv.get(LAYOUT_KEY), "serve_port": first_free})
    app = w.ctx.cluster.lifecycle.add_workers(1)[0]
    given = {v for k, v in ray_args(app).items() if k.endswith("port")}
    assert first_free not in given and not given & layout.current().head_ports

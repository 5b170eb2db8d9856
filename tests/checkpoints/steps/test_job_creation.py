"""job_creation's plan against a fake platform: jobs created and run parents first, skipped
when they succeeded for their spec, updated behind a gate, forced, or waited for."""
from __future__ import annotations

from checkpoints import BY_NAME
from tests.fakes import JOBS, job_world, succeed_all, summary


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

"""3. job_creation: create or update the jobs of jobs_config.yaml and run them in order.

A job's run is skipped when its last run succeeded for the same job spec (and script
content), unless forced (``--force`` / ``FORCE_REBUILD=true``). Changing an existing job
needs an approval.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, replace

from checkpoints import changes
from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Action, Kind, Plan
from cluster.jobs_config import load_jobs_config
from cluster.platforms.records import RUN_KEY_ENV, JobSpec
from core.timing import TimedOut, poll_until


def desired_jobs(ctx: Context) -> list[JobSpec]:
    platform_env = ctx.platform.job_environment()
    specs = [JobSpec(name=j["name"], script=j["script"], arguments=j["arguments"], cpu=j["cpu"],
                     memory=j["memory"], timeout=j["timeout"], parent=j["parent"],
                     environment={**j["environment"], **platform_env})
             for j in load_jobs_config(ctx.config.jobs_config)]
    if ctx.platform.chains_jobs:
        # A child job starts by itself when its parent succeeds, so the run key must be in
        # the job's own environment for every run of it to carry it.
        specs = [replace(s, environment={**s.environment, RUN_KEY_ENV: run_key(ctx, s)})
                 for s in specs]
    return specs


def run_key(ctx: Context, spec: JobSpec) -> str:
    """What a successful run is recorded against: the spec and the script's content."""
    if RUN_KEY_ENV in spec.environment:
        return spec.environment[RUN_KEY_ENV]
    script = ctx.config.project_dir / spec.script
    content = script.read_bytes() if script.exists() else b""
    return hashlib.sha256(spec.spec_hash.encode() + content).hexdigest()[:16]


def _settings(spec: JobSpec) -> dict:
    """A job's settings as a plan shows them (its name is the action's)."""
    return {k: v for k, v in asdict(spec).items() if k != "name"}


class JobCreation(Checkpoint):
    name = "job_creation"
    description = ("Create or update the jobs of jobs_config.yaml (parent chain) and run them in "
                   "order, skipping runs that already succeeded for the same job spec")
    gate_policy = "approval when it changes existing jobs"

    def plan(self, ctx: Context) -> Plan:
        existing = {j.name: j for j in ctx.platform.list_jobs()}
        actions, rerun = [], ctx.force or ctx.config.force_rebuild
        seal_key = ctx.store.audit_log.derived_key("plan-seal")
        for spec in desired_jobs(ctx):
            job = existing.get(spec.name)
            if job is None:
                shown, sealed = changes.settings(_settings(spec))
                actions.append(Action(Kind.CREATE, "job", spec.name,
                                      {"script": spec.script, "settings": shown},
                                      sealed=changes.seal(seal_key, sealed)))
            elif job.spec != spec:  # what changes, before -> after (environment values hidden)
                diff, sealed = changes.diff(_settings(job.spec), _settings(spec))
                actions.append(Action(Kind.UPDATE, "job", spec.name, {"changes": diff},
                                      sealed=changes.seal(seal_key, sealed)))
            key = run_key(ctx, spec)
            runs = ctx.platform.job_runs(job.id) if job else []
            done = any(r.spec_hash == key and r.status == "succeeded" for r in runs)
            going = next((r for r in runs if r.spec_hash == key and not r.finished), None)
            if going is not None:  # started earlier (maybe by a run that crashed): wait for it
                actions.append(Action(Kind.WAIT, "job", spec.name, {"run": going.id}))
            elif rerun or not done:
                actions.append(Action(Kind.RUN, "job", spec.name, {"forced": bool(rerun and done)}))
        return Plan(self.name, tuple(actions))

    def approval_reasons(self, plan: Plan) -> list[str]:
        updates = [a.target for a in plan.actions if a.kind == Kind.UPDATE]
        return [f"changes existing {', '.join(updates)}"] if updates else []

    def apply(self, ctx: Context, plan: Plan) -> None:
        to_run = set(plan.names(Kind.RUN))
        waiting = {a.name: a.details["run"] for a in plan.actions if a.kind == Kind.WAIT}
        chains = ctx.platform.chains_jobs
        jobs = {j.name: j for j in ctx.platform.list_jobs()}
        specs = desired_jobs(ctx)
        for spec in specs:  # the whole chain first (parents first): CML starts children itself
            parent_id = jobs[spec.parent].id if spec.parent else None
            job = jobs.get(spec.name)
            if job is None:
                jobs[spec.name] = ctx.platform.create_job(spec, parent_id)
            elif job.spec != spec:
                jobs[spec.name] = ctx.platform.update_job(job.id, spec, parent_id)
        started = {}  # name -> run started (or chained) in this apply
        for spec in specs:
            job = jobs[spec.name]
            if spec.name in waiting:  # a run an earlier, interrupted attempt started
                run = ctx.platform.get_job_run(job.id, waiting[spec.name])
                ctx.reporter.message(f"job {spec.name}: waiting for run {run.id}, started earlier")
            elif spec.name not in to_run:
                continue
            elif chains and spec.parent in started:
                run = self._chained_run(ctx, job, started[spec.parent])
            else:
                run = ctx.platform.start_job_run(job.id, run_key(ctx, spec))
                ctx.reporter.message(f"job {spec.name}: run {run.id} started")
            started[spec.name] = self._wait(ctx, job, spec, run)

    def _chained_run(self, ctx: Context, job, parent_run):
        """The run the platform starts by itself once the parent's run has succeeded."""
        def started():
            return next((r for r in ctx.platform.job_runs(job.id)
                         if r.created_at >= parent_run.created_at), None)
        try:
            run = poll_until(started, 120, f"job {job.name}: the run its parent starts",
                             on_wait=ctx.on_wait, clock=ctx.clock, interval=0.5)
        except TimedOut:
            raise CheckpointFailed(f"job {job.name}: no run started after its parent "
                                   f"succeeded") from None
        ctx.reporter.message(f"job {job.name}: run {run.id} started by its parent")
        return run

    def _wait(self, ctx: Context, job, spec: JobSpec, run):
        limit = spec.timeout + 120  # the platform kills it at spec.timeout; allow for that
        latest = [run]

        def finished():
            if not latest[0].finished:
                latest[0] = ctx.platform.get_job_run(job.id, run.id)
            return latest[0].finished
        try:
            poll_until(finished, limit, f"job {spec.name} run {run.id}", on_wait=ctx.on_wait,
                       clock=ctx.clock, interval=0.2)
        except TimedOut:
            raise CheckpointFailed(f"job {spec.name} run {run.id} still {latest[0].status} "
                                   f"after {limit}s (timeout {spec.timeout}s)") from None
        run = latest[0]
        if run.status != "succeeded":
            log = ctx.platform.job_run_log(run.id)
            raise CheckpointFailed(f"job {spec.name} run {run.id} ended {run.status}"
                                   + (f" (exit {run.exit_code})" if run.exit_code is not None else "")
                                   + (f"\n{log.strip()[-1500:]}" if log.strip() else ""))
        return run

    def verify(self, ctx: Context) -> list[str]:
        jobs = {j.name: j for j in ctx.platform.list_jobs()}
        problems = []
        for spec in desired_jobs(ctx):
            job = jobs.get(spec.name)
            key = run_key(ctx, spec)
            if job is None or not any(r.spec_hash == key and r.status == "succeeded"
                                      for r in ctx.platform.job_runs(job.id)):
                problems.append(f"job {spec.name} has no successful run of its current spec")
        return problems + ray_version_problems(ctx)


def ray_version_problems(ctx: Context) -> list[str]:
    """The Ray the nodes will run (recorded by jobs/launch_ray_cluster.py: on CML the
    project venv's) is the one the config asks for (``ray.version``)."""
    wanted = ctx.config.ray.version
    recorded = (ctx.platform.read_file("ray_version") or "").strip() if wanted else ""
    if recorded and recorded != wanted:
        return [f"the nodes would run Ray {recorded} (the environment the jobs built), but "
                f"ray.version is {wanted}: pin ray=={wanted} in requirements.txt (or change "
                f"ray.version) and run again with --force"]
    return []

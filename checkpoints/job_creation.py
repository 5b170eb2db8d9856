"""3. job_creation: create or update the jobs of jobs_config.yaml and run them in order.

A job's run is skipped when its last run succeeded for the same job spec (and script
content), unless forced (``--force`` / ``FORCE_REBUILD=true``). Changing an existing job
needs an approval.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import replace

from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Action, Plan
from cluster.jobs_config import load_jobs_config
from cluster.platform import JobSpec


RUN_KEY = "RAYDEPLOY_RUN_KEY"


def desired_jobs(ctx: Context) -> list[JobSpec]:
    specs = [JobSpec(name=j["name"], script=j["script"], arguments=j["arguments"], cpu=j["cpu"],
                     memory=j["memory"], timeout=j["timeout"], parent=j["parent_job_key"],
                     environment=j["environment"])
             for j in load_jobs_config(ctx.config.jobs_config)]
    if getattr(ctx.platform, "chains_jobs", False):
        # A child job starts by itself when its parent succeeds (CML), so the run key must be
        # in the job's own environment for every run of it to carry it.
        specs = [replace(s, environment={**s.environment, RUN_KEY: run_key(ctx, s)}) for s in specs]
    return specs


def run_key(ctx: Context, spec: JobSpec) -> str:
    """What a successful run is recorded against: the spec and the script's content."""
    if RUN_KEY in spec.environment:
        return spec.environment[RUN_KEY]
    script = ctx.config.project_dir / spec.script
    content = script.read_bytes() if script.exists() else b""
    return hashlib.sha256(spec.spec_hash.encode() + content).hexdigest()[:16]


class JobCreation(Checkpoint):
    name = "job_creation"
    description = ("Create or update the jobs of jobs_config.yaml (parent chain) and run them in "
                   "order, skipping runs that already succeeded for the same job spec")
    gate_policy = "approval when it changes existing jobs"

    def plan(self, ctx: Context) -> Plan:
        existing = {j.name: j for j in ctx.platform.list_jobs()}
        actions, rerun = [], ctx.force or ctx.config.force_rebuild
        for spec in desired_jobs(ctx):
            job = existing.get(spec.name)
            if job is None:
                actions.append(Action("create", f"job {spec.name}", {"script": spec.script}))
            elif job.spec != spec:
                changed = sorted(k for k in spec.__dataclass_fields__
                                 if getattr(spec, k) != getattr(job.spec, k))
                actions.append(Action("update", f"job {spec.name}", {"fields": changed}))
            key = run_key(ctx, spec)
            runs = ctx.platform.job_runs(job.id) if job else []
            done = any(r.spec_hash == key and r.status == "succeeded" for r in runs)
            if rerun or not done:
                actions.append(Action("run", f"job {spec.name}", {"forced": bool(rerun and done)}))
        return Plan(self.name, tuple(actions))

    def approval_reasons(self, plan: Plan) -> list[str]:
        updates = [a.target for a in plan.actions if a.kind == "update"]
        return [f"changes existing {', '.join(updates)}"] if updates else []

    def apply(self, ctx: Context, plan: Plan) -> None:
        to_run = {a.target.split(" ", 1)[1] for a in plan.actions if a.kind == "run"}
        chains = getattr(ctx.platform, "chains_jobs", False)
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
            if spec.name not in to_run:
                continue
            if chains and spec.parent in started:
                run = self._chained_run(ctx, job, started[spec.parent])
            else:
                run = ctx.platform.start_job_run(job.id, run_key(ctx, spec))
                ctx.reporter.message(f"job {spec.name}: run {run.id} started")
            started[spec.name] = self._wait(ctx, job, spec, run)

    def _chained_run(self, ctx: Context, job, parent_run):
        """The run CML starts by itself once the parent's run has succeeded."""
        deadline = time.monotonic() + 120
        while True:
            runs = [r for r in ctx.platform.job_runs(job.id) if r.created_at >= parent_run.created_at]
            if runs:
                ctx.reporter.message(f"job {job.name}: run {runs[0].id} started by its parent")
                return runs[0]
            if time.monotonic() > deadline:
                raise CheckpointFailed(f"job {job.name}: no run started after its parent succeeded")
            ctx.on_wait(f"job {job.name}: waiting for the run its parent starts")
            time.sleep(0.5)

    def _wait(self, ctx: Context, job, spec: JobSpec, run):
        start = time.monotonic()
        while not run.finished:
            elapsed = time.monotonic() - start
            if elapsed > spec.timeout + 120:
                raise CheckpointFailed(f"job {spec.name} run {run.id} still {run.status} after "
                                       f"{elapsed:.0f}s (timeout {spec.timeout}s)")
            ctx.on_wait(f"job {spec.name} run {run.id} is {run.status} ({elapsed:.0f}s)")
            time.sleep(0.1 if elapsed < 5 else 1)
            run = ctx.platform.get_job_run(job.id, run.id)
        if run.status != "succeeded":
            log = getattr(ctx.platform, "job_run_log", lambda _id: "")(run.id)
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
        return problems

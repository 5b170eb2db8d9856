"""8. validation: live checks of the whole deployment, every app on the cluster included.

It always runs (its plan is one ``check`` action, never "satisfied"): the checks are the
point, and a run should end by saying what it found. Its Ray job starts ahead, once the
cluster has its nodes (``cluster.job_check.ahead``): it runs while Serve deploys."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from cluster import job_check
from cluster.health import all_checks

AHEAD = "validation.job_ahead"  # in the notes: (run id, the wait for the job it started ahead)


class Validation(Checkpoint):
    name = "validation"
    description = ("Live checks: nodes alive as expected, resources as configured, every app "
                   "on the cluster RUNNING, no replica stuck, answering HTTP through the proxy, "
                   "and a Ray job running a task on every node")

    def plan(self, ctx: Context) -> Plan:
        return Plan(self.name, (Action(Kind.CHECK, "cluster"),))

    def ahead(self, ctx: Context) -> None:
        run, wait = ctx.notes.get(AHEAD, (None, None))
        if run != ctx.run_id or wait is None:  # (a run that ended before it left one)
            ctx.notes[AHEAD] = (ctx.run_id, job_check.ahead(ctx.cluster))

    def apply(self, ctx: Context, plan: Plan) -> None:
        run, wait = ctx.notes.pop(AHEAD, (None, None))
        checks = ctx.notes["checks"] = all_checks(
            ctx.cluster, ray_job=True, reuse_job=True, job_ahead=wait if run == ctx.run_id else None)
        for check in checks:
            ctx.reporter.message(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<22} {check.detail}")

    def verify(self, ctx: Context) -> list[str]:
        checks = ctx.notes.pop("checks", None) or all_checks(ctx.cluster, ray_job=True, reuse_job=True)
        return [f"{c.name}: {c.detail}" for c in checks if not c.ok]

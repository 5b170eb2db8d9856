"""8. validation: live checks of the whole deployment, every app on the cluster included.

It always runs (its plan is one ``check`` action, never "satisfied"): the checks are the
point, and a run should end by saying what it found."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from cluster.health import all_checks


class Validation(Checkpoint):
    name = "validation"
    description = ("Live checks: nodes alive as expected, resources as configured, every app "
                   "on the cluster RUNNING, no replica stuck, answering HTTP through the proxy, "
                   "and a Ray job running a task on every node")

    def plan(self, ctx: Context) -> Plan:
        return Plan(self.name, (Action(Kind.CHECK, "cluster"),))

    def apply(self, ctx: Context, plan: Plan) -> None:
        checks = ctx.notes["checks"] = all_checks(ctx.cluster, ray_job=True, reuse_job=True)
        for check in checks:
            ctx.reporter.message(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<22} {check.detail}")

    def verify(self, ctx: Context) -> list[str]:
        checks = ctx.notes.pop("checks", None) or all_checks(ctx.cluster, ray_job=True, reuse_job=True)
        return [f"{c.name}: {c.detail}" for c in checks if not c.ok]

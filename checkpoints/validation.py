"""7. validation: live checks of the whole deployment; nothing to apply."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Plan
from cluster.health import all_checks


class Validation(Checkpoint):
    name = "validation"
    description = ("Live checks: nodes alive as expected, resources as configured, every app "
                   "RUNNING and answering HTTP through the proxy")

    def plan(self, ctx: Context) -> Plan:
        checks = all_checks(ctx.cluster)
        failed = [c for c in checks if not c.ok]
        if failed:
            raise CheckpointFailed("; ".join(f"{c.name}: {c.detail}" for c in failed))
        return Plan(self.name, notes=tuple(f"{c.name}: {c.detail}" for c in checks))

    def apply(self, ctx: Context, plan: Plan) -> None:
        pass

    def verify(self, ctx: Context) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in all_checks(ctx.cluster) if not c.ok]

"""teardown (not one of the eight): stop every node app of the cluster. Always destructive."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from checkpoints.steps.serve_deploy import MANAGED_KEY
from core.facts import TEARDOWN


class Teardown(Checkpoint):
    name = TEARDOWN
    description = "Stop and delete every node app of the cluster (Serve apps go with the head)"
    gate_policy = "destructive approval, always"
    may_be_destructive = True

    def plan(self, ctx: Context) -> Plan:
        apps = ctx.cluster.inventory.owned_apps()
        return Plan(self.name, tuple(Action(Kind.DELETE, "app", a.name, {"status": a.status})
                                     for a in sorted(apps, key=lambda a: a.name)))

    def apply(self, ctx: Context, plan: Plan) -> None:
        names = ctx.cluster.lifecycle.teardown()
        ctx.store.kv.delete(MANAGED_KEY)  # the Serve apps went with the head
        ctx.reporter.message(f"stopped {len(names)} app(s): {', '.join(names)}")

    def verify(self, ctx: Context) -> list[str]:
        left = [a.name for a in ctx.cluster.inventory.owned_apps()]
        return [f"apps still present: {', '.join(left)}"] if left else []

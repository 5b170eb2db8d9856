"""4. head_launch: exactly one head app (0 GPUs), GCS and dashboard answering."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from cluster.platforms.base import FAILED, STOPPED

HEAD_TIMEOUT = 120
RESTARTS_ALL = "restarts the whole cluster: workers and Serve apps go down"


class HeadLaunch(Checkpoint):
    name = "head_launch"
    description = "Ensure exactly one head app (0 GPUs), wait until GCS and dashboard answer"
    gate_policy = "destructive approval when it must replace or restart a running head"

    def plan(self, ctx: Context) -> Plan:
        inventory, config = ctx.cluster.inventory, ctx.config
        apps = inventory.apps()
        head = inventory.head_app(apps=apps)
        if head is None:
            stale = [a for a in apps if a.name == inventory.head_name
                     and a.status in (FAILED, STOPPED)]
            details = {"cpu": config.head.cpu, "memory": config.head.memory, "gpus": 0}
            if stale:
                details["previous"] = f"{stale[0].status} app cleaned up"
            return Plan(self.name, (Action(Kind.CREATE, "head", inventory.head_name, details),))
        want = (config.head.cpu, config.head.memory)
        have = (head.spec.cpu, head.spec.memory)
        if have != want:
            return Plan(self.name, (Action(Kind.REPLACE, "head", head.name, {
                "why": f"resources {have} -> {want}", "impact": RESTARTS_ALL}),))
        if not inventory.dashboard().healthy():
            return Plan(self.name, (Action(Kind.REPLACE, "head", head.name, {
                "why": "the head app runs but its GCS/dashboard does not answer",
                "impact": RESTARTS_ALL}),))
        return Plan(self.name, notes=(f"head {head.name} healthy at {inventory.head_address()}",))

    def apply(self, ctx: Context, plan: Plan) -> None:
        cluster = ctx.cluster
        if any(a.kind == Kind.REPLACE for a in plan.actions):
            cluster.lifecycle.teardown()
        for app in cluster.inventory.apps():  # failed/stopped leftovers of an earlier head
            if app.name == cluster.inventory.head_name and app.status in (FAILED, STOPPED):
                ctx.platform.delete_app(app.id)
        head = cluster.lifecycle.start_head()
        cluster.lifecycle.wait_head(head, HEAD_TIMEOUT, ctx.on_wait)

    def verify(self, ctx: Context) -> list[str]:
        inventory = ctx.cluster.inventory
        head = inventory.head_app()
        if head is None:
            return ["no running head app"]
        if not inventory.dashboard().healthy():
            return [f"head {head.name}: GCS/dashboard not answering at {inventory.dashboard_url()}"]
        ip = inventory.node_ip(head)
        if not any(n["node_ip"] == ip and n["state"] == "ALIVE" and n["is_head_node"]
                   for n in inventory.ray_nodes()):
            return [f"head {head.name}: no ALIVE head node at {ip}"]
        return []

"""4. head_launch: exactly one head app (0 GPUs), GCS and dashboard answering."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Plan
from cluster.platform import FAILED, STOPPED

HEAD_TIMEOUT = 120


class HeadLaunch(Checkpoint):
    name = "head_launch"
    description = "Ensure exactly one head app (0 GPUs), wait until GCS and dashboard answer"
    gate_policy = "destructive approval when it must replace or restart a running head"

    def plan(self, ctx: Context) -> Plan:
        cluster, config = ctx.cluster, ctx.config
        head = cluster.head_app()
        if head is None:
            stale = [a for a in cluster.apps() if a.name == cluster.head_name
                     and a.status in (FAILED, STOPPED)]
            details = {"cpu": config.head.cpu, "memory": config.head.memory, "gpus": 0}
            if stale:
                details["previous"] = f"{stale[0].status} app cleaned up"
            return Plan(self.name, (Action("create", f"head {cluster.head_name}", details),))
        want = (config.head.cpu, config.head.memory)
        have = (head.spec.cpu, head.spec.memory)
        if have != want:
            return Plan(self.name, (Action("replace", f"head {head.name}", {
                "why": f"resources {have} -> {want}",
                "impact": "restarts the whole cluster: workers and Serve apps go down"}),))
        if not cluster.dashboard().healthy():
            return Plan(self.name, (Action("replace", f"head {head.name}", {
                "why": "the head app runs but its GCS/dashboard does not answer",
                "impact": "restarts the whole cluster: workers and Serve apps go down"}),))
        return Plan(self.name, notes=(f"head {head.name} healthy at {cluster.head_address()}",))

    def apply(self, ctx: Context, plan: Plan) -> None:
        cluster = ctx.cluster
        if any(a.kind == "replace" for a in plan.actions):
            cluster.teardown()
        for app in cluster.apps():  # failed/stopped leftovers of an earlier head
            if app.name == cluster.head_name and app.status in (FAILED, STOPPED):
                ctx.platform.delete_app(app.id)
        head = cluster.start_head()
        cluster.wait_head(head, HEAD_TIMEOUT, ctx.on_wait)
        ctx.store.kv_set("cluster.head", {"app_id": head.id, "address": cluster.head_address(),
                                          "dashboard_url": cluster.dashboard_url()})

    def verify(self, ctx: Context) -> list[str]:
        cluster = ctx.cluster
        head = cluster.head_app()
        if head is None:
            return ["no running head app"]
        if not cluster.dashboard().healthy():
            return [f"head {head.name}: GCS/dashboard not answering at {cluster.dashboard_url()}"]
        ip = cluster.node_ip(head)
        if not any(n["node_ip"] == ip and n["state"] == "ALIVE" and n["is_head_node"]
                   for n in cluster.ray_nodes()):
            return [f"head {head.name}: no ALIVE head node at {ip}"]
        return []

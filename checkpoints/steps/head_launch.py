"""4. head_launch: exactly one head app (0 GPUs), GCS and dashboard answering."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Kind, Plan
from cluster.platforms.records import FAILED, RUNNING, STOPPED
from cluster.serve import app_paths
from core.errors import DomainError

HEAD_TIMEOUT = 120
RESTARTS_ALL = "restarts the whole cluster: workers and Serve apps go down"


class HeadLaunch(Checkpoint):
    name = "head_launch"
    description = "Ensure exactly one head app (0 GPUs), wait until GCS and dashboard answer"
    gate_policy = "destructive approval when it must replace or restart a running head"
    may_be_destructive = True
    # It applies only to start a head or replace it, which takes every app down by design
    # (the plan says so and names the apps that will not come back): serve_deploy's verify
    # proves that the configured apps serve again.

    def plan(self, ctx: Context) -> Plan:
        inventory, config = ctx.cluster.inventory, ctx.config
        apps = inventory.apps()
        head = inventory.head_app(apps=apps)
        if head is None:
            stale = [a for a in apps if a.spec.role == "head" and a.status in (FAILED, STOPPED)]
            details = {"cpu": config.head.cpu, "memory": config.head.memory, "gpus": 0}
            if stale:
                details["previous"] = f"{stale[0].status} app cleaned up"
            return Plan(self.name, (Action(Kind.CREATE, "head", inventory.head_name, details),))
        want = (config.head.cpu, config.head.memory)
        have = (head.spec.cpu, head.spec.memory)
        if have != want:
            return Plan(self.name, (self.replacement(ctx, head.name,
                                                     f"resources {have} -> {want}"),))
        if self._ready(ctx, head):
            return Plan(self.name,
                        notes=(f"head {head.name} healthy at {inventory.head_address()}",))
        if ctx.clock.time() - head.created_at < HEAD_TIMEOUT:  # started, not up yet
            return Plan(self.name, (Action(Kind.WAIT, "head", head.name, {"status": head.status}),))
        return Plan(self.name, (self.replacement(
            ctx, head.name, "the head app runs but its GCS/dashboard does not answer"),))

    @staticmethod
    def _ready(ctx: Context, head) -> bool:
        inventory = ctx.cluster.inventory
        try:
            return (head.status == RUNNING and inventory.dashboard().healthy()
                    and inventory.node_ip(head) in inventory.alive_ips())
        except DomainError:
            return False

    @staticmethod
    def replacement(ctx: Context, head_name: str, why: str) -> Action:
        """Replacing the head restarts everything: every worker rejoins, and the configured
        Serve apps are re-deployed by serve_deploy, but apps deployed by other means (the API)
        are gone for good: the plan breaks them."""
        workers = ctx.cluster.inventory.worker_apps()
        try:
            running = sorted(ctx.cluster.serve.status())
        except DomainError:
            running = []
        configured = {name for name, _ in app_paths(ctx.config)}
        lost = [name for name in running if name not in configured]
        details = {"why": why, **({"breaks": lost} if lost else {})}
        notes = [RESTARTS_ALL, f"{len(workers)} worker(s) restart; Serve apps "
                               f"{', '.join(running) or 'none'} go down"]
        if lost:
            notes.append(f"not in the config, so never re-deployed: {', '.join(lost)}")
        return Action(Kind.REPLACE, "head", head_name, details, impact={"notes": notes})

    def apply(self, ctx: Context, plan: Plan) -> None:
        cluster = ctx.cluster
        if any(a.kind == Kind.REPLACE for a in plan.actions):
            cluster.lifecycle.teardown()
        for app in cluster.inventory.apps():  # failed/stopped leftovers of an earlier head
            if app.spec.role == "head" and app.status in (FAILED, STOPPED):
                ctx.platform.delete_app(app.id)
        waiting = next((a for a in plan.actions if a.kind == Kind.WAIT), None)
        head = cluster.inventory.head_app() if waiting else cluster.lifecycle.start_head()
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

"""5. worker_launch: converge to ``workers.count`` worker apps, started concurrently, each
ALIVE in Ray. Removing workers (fewer configured, or changed resources) is destructive."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Plan
from cluster.platform import FAILED, STOPPED

WORKER_TIMEOUT = 180


class WorkerLaunch(Checkpoint):
    name = "worker_launch"
    description = "Converge to workers.count worker apps, launched concurrently, each ALIVE in Ray"
    gate_policy = "destructive approval when it removes workers"

    def plan(self, ctx: Context) -> Plan:
        cluster, want = ctx.cluster, ctx.config.workers
        actions = [Action("cleanup", f"worker {a.name}", {"status": a.status})
                   for a in cluster.worker_apps(live_only=False) if a.status in (FAILED, STOPPED)]
        live = cluster.worker_apps()
        matching = [a for a in live if (a.spec.cpu, a.spec.memory, a.spec.gpus)
                    == (want.cpu, want.memory, want.gpus)]
        for app in live:
            if app not in matching:
                actions.append(Action("replace", f"worker {app.name}", {
                    "why": f"resources {(app.spec.cpu, app.spec.memory, app.spec.gpus)} -> "
                           f"{(want.cpu, want.memory, want.gpus)}"}))
        extra = matching[want.count:]  # the highest-numbered ones go
        actions += [Action("delete", f"worker {a.name}", {"drain": True}) for a in extra]
        missing = want.count - len(matching) - sum(1 for a in actions if a.kind == "replace")
        if missing > 0 or any(a.kind == "replace" for a in actions):
            count = max(missing, 0) + sum(1 for a in actions if a.kind == "replace")
            if count:
                actions.append(Action("create", f"{count} worker(s)", {
                    "count": count, "cpu": want.cpu, "memory": want.memory, "gpus": want.gpus}))
        not_alive = self._not_alive(ctx, [a for a in matching[:want.count]])
        if not_alive and not actions:
            actions.append(Action("wait", "workers", {"not_alive": sorted(not_alive)}))
        return Plan(self.name, tuple(actions),
                    notes=(f"{len(live)} live worker app(s), {want.count} configured",))

    @staticmethod
    def _not_alive(ctx: Context, apps) -> list[str]:
        if not apps:
            return []
        alive = {n["node_ip"] for n in ctx.cluster.ray_nodes() if n["state"] == "ALIVE"}
        return [a.name for a in apps if ctx.cluster.node_ip(a) not in alive]

    def apply(self, ctx: Context, plan: Plan) -> None:
        cluster = ctx.cluster
        by_name = {a.name: a for a in cluster.worker_apps(live_only=False)}
        for action in plan.actions:
            app = by_name.get(action.target.split(" ", 1)[-1])
            if app is None:
                continue
            if action.kind == "cleanup":
                ctx.platform.delete_app(app.id)
            elif action.kind in ("delete", "replace"):
                ctx.reporter.message(f"draining and removing {app.name}")
                cluster.remove_worker(app.id)
        new = []
        for action in plan.actions:
            if action.kind == "create":
                new = cluster.add_workers(action.details["count"])
                ctx.reporter.message("started " + ", ".join(a.name for a in new))
        # wait for the new ones and for any earlier ones still joining (e.g. after a crash)
        cluster.wait_alive(cluster.worker_apps(), WORKER_TIMEOUT, ctx.on_wait)

    def verify(self, ctx: Context) -> list[str]:
        live = ctx.cluster.worker_apps()
        want = ctx.config.workers.count
        problems = [] if len(live) == want else [f"{len(live)} worker apps, {want} configured"]
        not_alive = self._not_alive(ctx, live)
        if not_alive:
            problems.append("not ALIVE in Ray: " + ", ".join(not_alive))
        return problems

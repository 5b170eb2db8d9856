"""5. worker_launch: converge to ``workers.count`` worker apps, started concurrently, each
ALIVE in Ray. Removing workers (fewer configured, or changed resources) is destructive."""
from __future__ import annotations

from checkpoints import impact
from checkpoints.base import Checkpoint, Context, serving_problems
from checkpoints.plan import Action, Kind, Plan
from cluster.lifecycle import NodeFailed
from cluster.platforms.records import FAILED, STOPPED

WORKER_TIMEOUT = 180
START_ATTEMPTS = 2  # a worker that ended while starting is started once more
CHOSEN = "chosen for the least impact: fewest replicas and actors, then the newest"


class WorkerLaunch(Checkpoint):
    name = "worker_launch"
    description = "Converge to workers.count worker apps, launched concurrently, each ALIVE in Ray"
    gate_policy = "destructive approval when it removes workers"
    may_be_destructive = True
    guards_serving = True

    def plan(self, ctx: Context) -> Plan:
        return self.plan_for(ctx, ctx.cluster.inventory.apps())

    def plan_for(self, ctx: Context, apps: list) -> Plan:
        """The plan for these platform apps (the live ones, or a preview's prediction)."""
        inventory, want = ctx.cluster.inventory, ctx.config.workers
        actions = [Action(Kind.CLEANUP, "worker", a.name, {"status": a.status})
                   for a in inventory.worker_apps(live_only=False, apps=apps)
                   if a.status in (FAILED, STOPPED)]
        live = inventory.worker_apps(apps=apps)
        orphans = self._orphans(ctx, apps, live)  # of a head that is gone (e.g. a crash mid-replace)
        actions += [Action(Kind.CLEANUP, "worker", a.name, {"status": "started for an earlier head, "
                                                            "not in Ray"}) for a in orphans]
        live = [a for a in live if a not in orphans]
        shape = (want.cpu, want.memory, want.gpus)
        matching = [a for a in live if (a.spec.cpu, a.spec.memory, a.spec.gpus) == shape]
        mismatched = [a for a in live if a not in matching]
        loads = None
        if len(matching) > want.count or mismatched:  # something goes: ask Ray what runs where
            loads = impact.loads_or_none(ctx)
            matching = impact.least_impact_first(ctx, loads, matching)[::-1]  # keep the busiest
            mismatched = impact.least_impact_first(ctx, loads, mismatched)
        keep, extra = matching[:want.count], matching[want.count:]
        missing = want.count - len(keep)  # new workers needed
        removals = []
        for n, app in enumerate(mismatched):  # each goes; the first `missing` are replaced
            have = (app.spec.cpu, app.spec.memory, app.spec.gpus)
            removals.append(Action(Kind.REPLACE if n < missing else Kind.DELETE, "worker",
                                   app.name, {"why": f"resources {have} -> {shape}", "drain": True}))
        removals += [Action(Kind.DELETE, "worker", a.name, {"drain": True}) for a in extra[::-1]]
        if removals:
            actions += impact.with_removal_impact(ctx, loads, removals, {a.name: a for a in live},
                                                  why=CHOSEN if extra else None)
        if missing > 0:
            details = {"count": missing, "cpu": want.cpu, "memory": want.memory, "gpus": want.gpus}
            going = {x.name for x in actions}  # cleaned up or removed first
            leaving = [a for a in inventory.worker_apps(live_only=False, apps=apps)
                       if a.name in going]
            hosts = ctx.platform.hosts_for_workers(missing, leaving)
            if hosts is not None:  # the machines they take, where the platform chooses them
                details["hosts"] = ", ".join(hosts) + (f" (only {len(hosts)} free)"
                                                       if len(hosts) < missing else "")
            actions.append(Action(Kind.CREATE, "workers", None, details))
        not_alive = self._not_alive(ctx, keep)
        if not_alive and not actions:  # started earlier, not joined yet: wait for them
            actions.append(Action(Kind.WAIT, "workers", None, {"not_alive": sorted(not_alive)}))
        return Plan(self.name, tuple(actions),
                    notes=(f"{len(live)} live worker app(s), {want.count} configured",))

    def _orphans(self, ctx: Context, apps: list, live: list) -> list:
        """Worker apps started before the running head that Ray does not know: they belonged
        to a head that was replaced, and will never join this one."""
        head = ctx.cluster.inventory.head_app(apps=apps)
        older = [a for a in live if head is not None and a.created_at < head.created_at]
        if not older:
            return []
        not_alive = set(self._not_alive(ctx, older))
        return [a for a in older if a.name in not_alive]

    @staticmethod
    def _not_alive(ctx: Context, apps) -> list[str]:
        if not apps:
            return []
        alive = ctx.cluster.inventory.alive_ips()
        ips = ctx.cluster.inventory.node_ips(apps)  # the unknown ones read at once
        return [a.name for a in apps if ips[a.id] not in alive]

    def apply(self, ctx: Context, plan: Plan) -> None:
        inventory, lifecycle = ctx.cluster.inventory, ctx.cluster.lifecycle
        by_name = {a.name: a for a in inventory.worker_apps(live_only=False)}
        for action in plan.actions:
            app = by_name.get(action.name)
            if app is None:
                continue
            if action.kind == Kind.CLEANUP:
                ctx.platform.delete_app(app.id)
            elif action.kind in (Kind.DELETE, Kind.REPLACE):
                ctx.reporter.message(f"draining and removing {app.name}")
                lifecycle.remove_worker(app.id, on_wait=ctx.on_wait)
        for action in plan.actions:
            if action.kind == Kind.CREATE:
                new = lifecycle.add_workers(action.details["count"])
                ctx.reporter.message("started " + ", ".join(a.name for a in new))
        # wait for the new ones and for any earlier ones still joining (e.g. after a crash);
        # a node that ended as it started (Ray's start timed out on a busy host, say) is
        # started once more before the checkpoint fails naming it
        # (every worker app is waited for: the plan cleaned the ended ones up, so one that
        # ended now ended while starting)
        for attempt in range(START_ATTEMPTS):
            try:
                lifecycle.wait_alive(inventory.worker_apps(live_only=False), WORKER_TIMEOUT,
                                     ctx.on_wait)
                return
            except NodeFailed as e:
                ended = [a for a in inventory.worker_apps(live_only=False)
                         if a.status in (FAILED, STOPPED)]
                if attempt == START_ATTEMPTS - 1 or not ended:
                    raise
                ctx.reporter.message(f"{str(e).splitlines()[0]}: starting "
                                     f"{', '.join(a.name for a in ended)} once more")
                for app in ended:
                    ctx.platform.delete_app(app.id)
                lifecycle.add_workers(len(ended))

    def verify(self, ctx: Context) -> list[str]:
        live = ctx.cluster.inventory.worker_apps()
        want = ctx.config.workers.count
        problems = [] if len(live) == want else [f"{len(live)} worker apps, {want} configured"]
        not_alive = self._not_alive(ctx, live)
        if not_alive:
            problems.append("not ALIVE in Ray: " + ", ".join(not_alive))
        return problems + serving_problems(ctx)

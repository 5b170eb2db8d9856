"""What a plan's destructive actions displace and break, attached to the actions themselves.

The numbers (replicas, actors, bytes, jobs) go in ``Action.impact``: shown to the approver,
not fingerprinted (they move while a plan waits). The apps an action leaves without a place
to run go in ``details["breaks"]``: fingerprinted, so an approval covers exactly them, and
needing their own acknowledgment."""
from __future__ import annotations

from dataclasses import replace

from checkpoints.base import Context
from checkpoints.plan import Action
from cluster.impact import Demand, NodeLoad, Shortfall, additions, cluster_loads, node_impact, shortfalls
from cluster.platforms.records import App
from core.errors import DomainError


def loads_or_none(ctx: Context) -> dict[str, NodeLoad] | None:
    """The cluster's node loads, or None when Ray cannot be asked (no head, no dashboard)."""
    try:
        return cluster_loads(ctx.cluster.inventory)
    except DomainError:
        return None


def load_of(ctx: Context, loads: dict[str, NodeLoad] | None, app: App) -> NodeLoad | None:
    if loads is None:
        return None
    return loads.get(ctx.cluster.inventory.node_ip(app))


def least_impact_first(ctx: Context, loads, apps: list[App]) -> list[App]:
    """Fewest replicas and actors first, then the newest (the cheapest to lose)."""
    def cost(app: App):
        load = load_of(ctx, loads, app)
        return (len(load.actors) if load else 0, -app.created_at)
    return sorted(apps, key=cost)


def with_removal_impact(ctx: Context, loads, actions: list[Action], apps: dict[str, App],
                        why: str | None = None) -> list[Action]:
    """The removal actions (their ``name`` is a worker app's name), each with what it
    displaces and what it breaks, the removals taken together: the displaced replicas and
    actors are placed on the nodes that stay, node by node. Where the platform names the
    machine a node runs on, the action says it (``host``)."""
    actions = [replace(a, details={**a.details, "host": host})
               if (host := ctx.platform.host_of(apps[a.name])) else a for a in actions]
    if loads is None:
        note = {"notes": ["impact unknown: Ray's state could not be read"]}
        return [replace(a, impact=note) for a in actions]
    inventory = ctx.cluster.inventory
    removing = {inventory.node_ip(apps[a.name]) for a in actions}
    missing = shortfalls(loads, removing)
    out = []
    for action in actions:
        load = load_of(ctx, loads, apps[action.name])
        if load is None:
            out.append(replace(action, impact={"notes": ["no ALIVE Ray node: displaces nothing"]}))
            continue
        here = {a.app or a.label for a in load.actors}
        breaking = [s for s in missing if s.app in here]
        impact = {**node_impact(load), "shortfalls": [s.describe() for s in breaking],
                  "notes": [why] if why and action.kind == "delete" else []}
        details = {**action.details, "breaks": sorted(s.app for s in breaking)} if breaking \
            else action.details
        out.append(replace(action, details=details, impact=impact))
    return out


def with_fit(loads, action: Action, demands: list[Demand], replacing: str | None = None,
             assumed: str | None = None) -> tuple[Action, list[Shortfall]]:
    """``action`` (it adds ``demands``), with where they would go node by node, and what
    fits nowhere (``assumed``: what the numbers take for granted)."""
    if loads is None:
        return replace(action, impact={"notes": ["fit unknown: Ray's state could not be read"]}), []
    placed, missing = additions(loads, demands, replacing)
    where = ", ".join(f"{n} on {ip}" for ip, n in sorted(placed.items()))
    notes = [f"places {len(demands) - sum(s.count for s in missing)} of {len(demands)} "
             f"replica{'s' if len(demands) > 1 else ''}" + (f": {where}" if where else "")]
    notes += [f"DOES NOT FIT: {s.describe('node')}" for s in missing]
    notes += [assumed] if assumed else []
    return replace(action, impact={"placement": placed, "notes": notes}), missing

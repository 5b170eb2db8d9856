"""What removing nodes would break, read from the live cluster (Ray's state API), not guessed.

For each node that would go: the Serve replicas (app, deployment) and other actors on it, the
GPUs and object-store bytes in use there, the jobs whose driver runs there. Then whether the
displaced replicas and actors fit on what remains, node by node (first fit, largest first),
against each remaining node's free resources: an app whose displaced replicas do not all
fit is *breaking* ("greeter needs 2 x 1 CPU, 0.8 CPU free on any remaining node").
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Resources that are not capacity: node-identity markers Ray adds (node:<ip>, node:__internal_head__)
SCHEDULING_KEYS = ("CPU", "GPU", "memory")


@dataclass(frozen=True)
class Demand:
    """One actor that would have to move."""
    actor_id: str
    label: str  # "app/deployment" for a Serve replica, the class name otherwise
    app: str | None  # the Serve app of a replica
    resources: dict  # what it asked for (CPU, GPU, memory, custom)
    node_ip: str


@dataclass
class NodeLoad:
    node_id: str
    ip: str
    total: dict
    used: dict
    actors: list[Demand] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    def free(self) -> dict:
        return {k: max(self.total.get(k, 0) - self.used.get(k, 0), 0.0) for k in self.total}

    @property
    def replicas(self) -> int:
        return sum(1 for a in self.actors if a.app)


def replica_of(actor: dict) -> tuple[str, str] | None:
    """(app, deployment) of a Serve replica actor, else None."""
    parts = (actor.get("class_name") or "").split(":")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "ServeReplica" else None


def cluster_loads(inventory) -> dict[str, NodeLoad]:
    """Every ALIVE node's load, by address: four reads of the dashboard."""
    client = inventory.dashboard()
    nodes = [n for n in inventory.ray_nodes(client) if n["state"] == "ALIVE"]
    usage = client.usage_by_node()
    loads = {n["node_ip"]: NodeLoad(n["node_id"], n["node_ip"], dict(n["resources_total"]),
                                    _used(usage.get(n["node_id"], {})))
             for n in nodes}
    by_id = {load.node_id: load for load in loads.values()}
    for actor in client.actors():
        load = by_id.get(actor.get("node_id"))
        if load is None or actor.get("class_name") in ("ServeController", "ProxyActor"):
            continue  # Serve's own actors live on the head, which never moves here
        replica = replica_of(actor)
        load.actors.append(Demand(
            actor["actor_id"], "/".join(replica) if replica else actor.get("class_name") or "actor",
            replica[0] if replica else None, dict(actor.get("required_resources") or {}),
            load.ip))
    for job in client.jobs():
        load = by_id.get(job.get("driver_node_id"))
        if load is not None and job.get("status") in ("PENDING", "RUNNING"):
            load.jobs.append(job.get("submission_id") or job.get("job_id") or "job")
    for load in loads.values():  # the load report lags a tick: what actors ask is in use now
        asked = Counter()
        for demand in load.actors:
            asked.update({k: v for k, v in demand.resources.items() if not k.startswith("node:")})
        for key, amount in asked.items():
            load.used[key] = max(load.used.get(key, 0.0), amount)
    return loads


def _used(usage: dict) -> dict:
    out = {k: v for k, v in usage.items() if not k.startswith("node:")}
    if "objectStoreMemory" in out:  # the load report's name for it
        out["object_store_memory"] = out.pop("objectStoreMemory")
    return out


@dataclass(frozen=True)
class Shortfall:
    app: str  # a Serve app, or an actor's class name
    count: int
    demand: dict  # one replica's
    best_free: dict  # the most free of each resource on any remaining node

    def describe(self, nodes: str = "remaining node") -> str:
        need = " + ".join(_amount(k, v) for k, v in _capacity(self.demand).items()) or "nothing"
        free = ", ".join(_amount(k, self.best_free.get(k, 0)) for k in _capacity(self.demand))
        return (f"{self.app} needs {self.count} x {need}, "
                f"{free or 'nothing'} free on any {nodes}")


def _amount(resource: str, value: float) -> str:
    if "memory" in resource:  # Ray counts it in bytes
        return f"{value / 2 ** 30:.2g} GiB {resource}"
    return f"{value:g} {resource}"


def _capacity(resources: dict) -> dict:
    return {k: v for k, v in resources.items() if not k.startswith("node:") and v}


def node_impact(load: NodeLoad) -> dict:
    """What a node's removal displaces (numbers for people: never fingerprinted)."""
    replicas = Counter(a.label for a in load.actors if a.app)
    return {"replicas": dict(sorted(replicas.items())),
            "actors": sorted(a.label for a in load.actors if not a.app),
            "gpus_in_use": load.used.get("GPU", 0.0),
            "object_store_bytes_in_use": int(load.used.get("object_store_memory", 0)),
            "jobs": sorted(load.jobs)}


def shortfalls(loads: dict[str, NodeLoad], removing: set[str]) -> list[Shortfall]:
    """What would not fit on the remaining nodes if every node in ``removing`` went."""
    free = {load.ip: load.free() for ip, load in loads.items() if ip not in removing}
    displaced = [a for ip in removing if ip in loads for a in loads[ip].actors]
    _, unplaced = place(free, displaced)
    return _shortfalls(unplaced, free)


def place(free: dict[str, dict], demands: list[Demand]) -> tuple[dict[str, int], list[Demand]]:
    """First fit, largest first: each demand on the first node (by address) whose free
    resources hold it, taken from ``free``. Returns how many went to each node, and the
    demands that fit nowhere."""
    placed: Counter = Counter()
    unplaced = []
    for demand in sorted(demands, key=lambda a: tuple(-a.resources.get(k, 0)
                                                      for k in SCHEDULING_KEYS)):
        needs = _capacity(demand.resources)
        target = next((ip for ip, left in free.items()
                       if all(left.get(k, 0) + 1e-9 >= v for k, v in needs.items())
                       and _node_constraint_ok(demand.resources, ip)), None)
        if target is None:
            unplaced.append(demand)
            continue
        placed[target] += 1
        for k, v in needs.items():
            free[target][k] = free[target].get(k, 0) - v
    return dict(placed), unplaced


def _shortfalls(unplaced: list[Demand], free: dict[str, dict]) -> list[Shortfall]:
    by_app: dict[str, list[Demand]] = {}
    for demand in unplaced:
        by_app.setdefault(demand.app or demand.label, []).append(demand)
    best = {k: max((left.get(k, 0) for left in free.values()), default=0.0)
            for k in SCHEDULING_KEYS}
    return [Shortfall(name, len(demands), _capacity(demands[0].resources), best)
            for name, demands in sorted(by_app.items())]


def replica_demands(app: str, count: int, options: dict | None) -> list[Demand]:
    """``count`` new replicas of ``app``, each asking what ``ray_actor_options`` says (where
    it says nothing of CPUs, Serve's default: 1)."""
    options = options or {}
    resources = {"CPU": float(options.get("num_cpus", 1.0)),
                 "GPU": float(options.get("num_gpus") or 0),
                 "memory": float(options.get("memory") or 0),
                 **{k: float(v) for k, v in (options.get("resources") or {}).items()}}
    return [Demand(f"new-{i}", app, app, resources, "") for i in range(count)]


def additions(loads: dict[str, NodeLoad], demands: list[Demand],
              replacing: str | None = None) -> tuple[dict[str, int], list[Shortfall]]:
    """Where new replicas (``demands``) would go on the nodes as they are now: how many on
    each node, and what fits nowhere. ``replacing``: the Serve app they replace, whose
    replicas' resources are counted free (a re-deploy replaces them)."""
    free = {}
    for ip, load in loads.items():
        left = load.free()
        for actor in load.actors:
            if replacing is not None and actor.app == replacing:
                for k, v in _capacity(actor.resources).items():
                    left[k] = min(left.get(k, 0) + v, load.total.get(k, 0))
        free[ip] = left
    placed, unplaced = place(free, demands)
    return placed, _shortfalls(unplaced, free)


def _node_constraint_ok(resources: dict, ip: str) -> bool:
    """An actor pinned to a node (``node:<ip>``) fits only there."""
    pins = [k[len("node:"):] for k in resources if k.startswith("node:") and k[5:6].isdigit()]
    return not pins or ip in pins

"""host_cleanup: stop Ray that this tool did not start on the platform's own hosts (the seed's
"cleanup existing" step, made safe).

The seed ran ``ray stop`` on every host: whatever Ray ran there, whoever started it, went.
Here the plan names each session found (host, pid, command of each process), the gate is
always a destructive approval (``approvals.operations`` cannot turn it off: these processes
belong to somebody), and the apply stops exactly the processes shown, each only while its pid
is still the process seen (a Ray started since is not in the plan: it stays). One audit event.
"""
from __future__ import annotations

from checkpoints.base import Context
from checkpoints.operation import Operation
from checkpoints.plan import NO_GATE, Action, Gate, Kind, Plan, policy_for
from cluster.platforms.records import ForeignRay
from core.errors import Invalid


class HostCleanup(Operation):
    name = "host_cleanup"
    action = "host.cleanup"
    description = ("Stop Ray that this tool did not start on the hosts (exactly the processes "
                   "the plan shows)")
    gate_policy = "always a destructive approval"
    may_be_destructive = True

    @property
    def target(self) -> str:
        return self.params.get("host") or "every host"

    def precheck(self, ctx: Context) -> None:
        if not ctx.platform.has_own_hosts:
            raise Invalid(f"the {ctx.platform.name} platform's nodes run on nothing else's "
                          f"hosts: there is no Ray of somebody else's to stop", field="host")
        ctx.platform.foreign_ray(self.params.get("host"))  # NotFound: not one of its hosts

    def plan(self, ctx: Context) -> Plan:
        found = ctx.platform.foreign_ray(self.params.get("host"))
        actions = tuple(Action(Kind.DELETE, "foreign_ray", f"{f.host}/{f.session}", {
            "host": f.host, "session": f.session,
            "processes": [[pid, start, command] for pid, start, command in f.processes]})
            for f in found)
        return Plan(self.name, actions, notes=() if actions else (
            f"no Ray that this tool did not start on {self.target}",))

    def gate(self, plan: Plan, config) -> Gate:
        if plan.empty:
            return NO_GATE
        stopped = "; ".join(f"{a.details['host']}: {len(a.details['processes'])} process(es) "
                            f"of session {a.details['session']}" for a in plan.actions)
        return Gate(required=True, destructive=True, policy=policy_for(config, self.name),
                    reasons=(f"stops processes this tool did not start: {stopped}",))

    def apply(self, ctx: Context, plan: Plan) -> None:
        stopped = []
        self.planned = {(a.details["host"], p[0], p[1]) for a in plan.actions
                        for p in a.details["processes"]}
        for action in plan.actions:
            d = action.details
            found = ForeignRay(d["host"], d["session"], tuple(tuple(p) for p in d["processes"]))
            pids = ctx.platform.stop_foreign(found)
            stopped += [{"host": found.host, "pid": pid} for pid in pids]
            ctx.reporter.message(f"stopped {len(pids)} of the {len(found.processes)} process(es) "
                                 f"of session {found.session} on {found.host}")
        self.result = {"stopped": stopped}

    def verify(self, ctx: Context) -> list[str]:
        """The processes the plan showed are gone (a Ray started since is not this run's)."""
        planned = getattr(self, "planned", None)
        return [f"{f.host}: pid {pid} ({command[:100]}) still runs"
                for f in ctx.platform.foreign_ray(self.params.get("host"))
                for pid, start, command in f.processes
                if planned is None or (f.host, pid, start) in planned]

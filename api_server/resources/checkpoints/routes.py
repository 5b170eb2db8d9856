from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.resources.checkpoints.schemas import (
    CheckpointDetailSchema,
    CheckpointListSchema,
    RunCheckpointSchema,
)
from api_server.resources.common import actor, auth_enabled, services
from api_server.resources.deployments.schemas import RunSchema
from checkpoints import BY_NAME, CHECKPOINTS, ORDER, audit
from checkpoints.background import ApproveAs
from core.errors import Conflict, DomainError, Forbidden, NotFound

blp = Blueprint("checkpoints", __name__, url_prefix="/api/v1/checkpoints",
                description="The ordered checkpoints, their gates, results and current plans")


def describe(checkpoint) -> dict:
    return {"order": ORDER.index(checkpoint.name) + 1, "name": checkpoint.name,
            "description": checkpoint.description, "gate_policy": checkpoint.gate_policy,
            "destructive": checkpoint.may_be_destructive,
            "last_result": services().store.runs.last_result(checkpoint.name)}


def current_plan(name: str) -> tuple[dict | None, dict | None, str | None]:
    """(plan, gate, error) of the checkpoint as the live system is now, or as it was a few
    seconds ago (planning asks the platform: readers share one plan per Services.plans TTL).
    An operation's gate (node_remove, app_delete, ...) has a plan only while a run of it
    waits: the plan needs the operation's parameters."""
    if name not in BY_NAME:
        return None, None, f"{name} is an operation: it has a plan only while one awaits approval"
    svc, checkpoint = services(), BY_NAME[name]

    def plan_now():
        try:
            plan = checkpoint.plan(svc.ctx)
        except DomainError as e:
            return None, None, str(e)
        return plan.to_dict(), checkpoint.gate(plan, svc.config).to_dict(), None
    return svc.plans.get(f"checkpoint:{name}", plan_now)


def checkpoint_or_404(name: str):
    if name not in ORDER:
        raise NotFound(f"no checkpoint {name!r}; checkpoints are {', '.join(ORDER)}")
    return BY_NAME[name]


@blp.route("")
class Checkpoints(MethodView):
    @blp.response(200, CheckpointListSchema)
    def get(self):
        """The checkpoints in deploy order, with gate policy and last result"""
        return {"checkpoints": [describe(c) for c in CHECKPOINTS]}


@blp.route("/<name>")
class Checkpoint(MethodView):
    @blp.response(200, CheckpointDetailSchema)
    @raises(blp, NotFound)
    def get(self, name):
        """One checkpoint: last result and the plan it would carry out now (planned at most
        a few seconds ago: RAYDEPLOY_PLAN_CACHE_SECONDS, 10)"""
        out = describe(checkpoint_or_404(name))
        plan, gate, error = current_plan(name)
        last = out["last_result"]
        return {**out, "status": last.status if last else "never_run", "plan": plan,
                "gate": gate, "plan_error": error}

    @blp.arguments(RunCheckpointSchema)
    @blp.response(202, RunSchema)
    @raises(blp, NotFound, Conflict, Forbidden, conflict="another run holds the cluster lease",
            forbidden="approve: true needs the approver role")
    def post(self, body, name):
        """Run this one checkpoint as a run (optionally approving its gate as the caller)"""
        checkpoint_or_404(name)
        svc, caller = services(), actor()
        approve_as = None
        if body["approve"]:  # approving needs the approver role, on this path as on any other
            try:
                caller.require("approver", f"approve {name}")
            except Forbidden as e:  # a refused approval is audited, as on every path
                audit.record(svc.store, caller, "approval.approve", name, "refused", reason=str(e))
                raise
            approve_as = ApproveAs(caller, body.get("reason"), body["acknowledge_risks"],
                                   body["acknowledge_breaking"], identities_known=auth_enabled())
        return svc.runs.start(caller, mode="checkpoint", checkpoint=name, force=body["force"],
                              approve_as=approve_as).run

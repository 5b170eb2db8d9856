from dataclasses import asdict

from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.idempotency import IDEMPOTENCY_KEY, idempotent
from api_server.resources.approvals.schemas import (
    ApprovalListSchema,
    ApprovalQuerySchema,
    ApprovalSchema,
    ApprovalStatusSchema,
    DecisionSchema,
    NamedDecisionSchema,
    RevokeSchema,
)
from api_server.resources.checkpoints.routes import current_plan
from api_server.resources.common import actor, auth_enabled, services
from checkpoints import approvals
from checkpoints.operations import gate_names
from checkpoints.plan import policy_for
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.records import Approval, ApprovalRequest

blp = Blueprint("approvals", __name__, url_prefix="/api/v1/approvals",
                description="Approval requests and decisions (append-only, audited)")


def as_item(record: Approval, revoked: set[str], now: float) -> dict:
    return {**asdict(record), "state": approvals.record_state(record, revoked, now)}


def pending_item(req: ApprovalRequest) -> dict:
    return {"id": req.id, "checkpoint": req.checkpoint, "plan_fingerprint": req.fingerprint,
            "run_id": req.run_id, "state": "pending", "requester": req.requester,
            "destructive": req.destructive, "breaking": req.breaking,
            "created_at": req.created_at}


def checkpoint_or_404(name: str) -> str:
    if name not in gate_names():
        raise NotFound(f"no checkpoint or operation {name!r}")
    return name


def record_decision(checkpoint: str, body: dict) -> dict:
    svc = services()
    ballot = approvals.Ballot(body["decision"], body["run_id"], body["plan_fingerprint"],
                              body.get("reason"), body["acknowledge_risks"],
                              body["acknowledge_breaking"])
    # without tokens nobody is known, so "the requester" cannot be told apart
    record = approvals.decide(svc.store, actor(body.get("approved_by")), checkpoint, ballot,
                              approvals.GateRules.of(svc.ctx, checkpoint, auth_enabled()))
    return as_item(record, svc.store.approvals.revoked_ids(), svc.store.clock.time())


@blp.route("")
class Approvals(MethodView):
    @blp.arguments(ApprovalQuerySchema, location="query")
    @blp.response(200, ApprovalListSchema)
    def get(self, query):
        """Approval requests awaiting a decision, and decisions given, newest first"""
        store = services().store
        state = query.get("state")
        items = []
        if state in (None, "pending"):
            items += [pending_item(r) for r in store.approvals.approval_requests(open_only=True)]
        if state != "pending":
            revoked, now = store.approvals.revoked_ids(), store.clock.time()
            items += [i for i in (as_item(r, revoked, now) for r in store.approvals.decisions())
                      if state is None or i["state"] == state]
        return {"approvals": items, "total": len(items)}

    @idempotent
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @blp.arguments(NamedDecisionSchema)
    @blp.response(201, ApprovalSchema)
    @blp.alt_response(200, schema=ApprovalSchema,
                      description="a repeat of a request with this Idempotency-Key (same "
                                  "caller, path and body): the first answer")
    @raises(blp, Invalid, Forbidden, NotFound, Conflict,
            notfound="no plan of that checkpoint awaits approval",
            conflict="not the run and plan awaiting approval, or already decided")
    def post(self, body):
        """Approve or reject the plan awaiting approval at a checkpoint"""
        return record_decision(body["checkpoint"], body)


@blp.route("/<key>", parameters=[{"in": "path", "name": "key", "schema": {"type": "string"},
                                   "description": "a checkpoint name (GET, POST) or an approval "
                                                  "id (DELETE)"}])
class CheckpointApproval(MethodView):
    @blp.response(200, ApprovalStatusSchema)
    @raises(blp, NotFound)
    def get(self, key):
        """A gate: the plan (awaiting, or as it would be now), its fingerprint, whether a
        valid approval exists, and what is still required"""
        name = checkpoint_or_404(key)
        svc = services()
        req = svc.store.approvals.open_request_for(name)
        if req is not None:
            plan, fingerprint = req.plan, req.fingerprint
            policy = policy_for(svc.config, name)
            gate_dict, error = approvals.gate_of(req, policy).to_dict(), None
            verdict = approvals.verdict_for(svc.store, req, policy)
        else:
            plan, gate_dict, error = current_plan(name)
            fingerprint = plan["fingerprint"] if plan else None
            verdict = None
        approved = verdict is not None and verdict.state == "approved"
        policy = policy_for(svc.config, name)
        required = approvals.still_required(req, verdict, policy) if req is not None else []
        return {"checkpoint": name, "awaiting": req is not None,
                "run_id": req.run_id if req else None, "plan": plan,
                "plan_fingerprint": fingerprint, "gate": gate_dict, "approved": approved,
                "approval": as_item(verdict.record, svc.store.approvals.revoked_ids(), svc.store.clock.time())
                if verdict and verdict.record else None,
                "required": required, "plan_error": error,
                "min_approvals": policy.min_approvals,
                "approvals": [as_item(r, svc.store.approvals.revoked_ids(), svc.store.clock.time())
                              for r in (verdict.approvals if verdict else ())]}

    @idempotent
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @blp.arguments(DecisionSchema)
    @blp.response(201, ApprovalSchema)
    @blp.alt_response(200, schema=ApprovalSchema,
                      description="a repeat of a request with this Idempotency-Key (same "
                                  "caller, path and body): the first answer")
    @raises(blp, Invalid, Forbidden, NotFound, Conflict,
            notfound="no such checkpoint, or no plan of it awaits approval",
            conflict="not the run and plan awaiting approval, or already decided")
    def post(self, body, key):
        """Approve or reject the plan awaiting approval at this checkpoint"""
        return record_decision(checkpoint_or_404(key), body)

    @blp.arguments(RevokeSchema, location="query")
    @blp.response(200, ApprovalSchema)
    @raises(blp, NotFound, Conflict, notfound="no such approval", conflict="already revoked")
    def delete(self, query, key):
        """Revoke an approval by id (a new record; the original stays in the audit trail)"""
        svc = services()
        revocation = approvals.revoke(svc.store, actor(), key, reason=query.get("reason"))
        return as_item(revocation, svc.store.approvals.revoked_ids(), svc.store.clock.time())

from marshmallow import Schema, fields, validate

from api_server.resources.checkpoints.schemas import GateSchema
from checkpoints.operations import gate_names

TIME = {"description": "Unix time, seconds"}


class ApprovalSchema(Schema):
    id = fields.String(required=True)
    checkpoint = fields.String(required=True)
    plan_fingerprint = fields.String(required=True)
    run_id = fields.String(allow_none=True)
    state = fields.String(required=True, metadata={
        "description": "pending (a plan awaiting a decision), approved, rejected, expired, "
                       "revoked, or revocation (the record that revoked another)"})
    decision = fields.String(allow_none=True)
    approver = fields.String(allow_none=True, metadata={
        "description": "who decided: the token's principal, the OS user of the CLI, or "
                       "'anonymous' (a server without tokens)"})
    claimed_by = fields.String(allow_none=True, metadata={
        "description": "a name the decider gave (CLI --operator, approved_by), kept beside "
                       "the approver, never instead of it"})
    requester = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    acknowledge_risks = fields.Boolean(allow_none=True)
    acknowledge_breaking = fields.Boolean(allow_none=True)
    destructive = fields.Boolean(allow_none=True)
    breaking = fields.Boolean(allow_none=True, metadata={
        "description": "the plan leaves an app without a place to run"})
    source = fields.String(allow_none=True)
    revokes = fields.String(allow_none=True)
    created_at = fields.Float(required=True, metadata=TIME)
    expires_at = fields.Float(allow_none=True, metadata=TIME)


class ApprovalListSchema(Schema):
    approvals = fields.List(fields.Nested(ApprovalSchema), required=True)
    total = fields.Integer(required=True)


class ApprovalQuerySchema(Schema):
    state = fields.String(validate=validate.OneOf(
        ["pending", "approved", "rejected", "expired", "revoked"]))


class DecisionSchema(Schema):
    decision = fields.String(load_default="approve", validate=validate.OneOf(["approve", "reject"]))
    approved_by = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "a name to record beside the approver (claimed_by); who decides is "
                       "the token's principal"})
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))
    acknowledge_risks = fields.Boolean(load_default=False)
    acknowledge_breaking = fields.Boolean(load_default=False, metadata={
        "description": "required (with acknowledge_risks) to approve a plan that breaks apps"})
    run_id = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "the run whose plan was reviewed (run_id of the gate): another "
                       "run's plan at the same gate is never decided on unseen (409)"})
    plan_fingerprint = fields.String(required=True, validate=validate.Length(min=1, max=64),
                                     metadata={
        "description": "the fingerprint of the plan reviewed (plan_fingerprint of the "
                       "gate): when it is not the plan awaiting approval now, nothing is "
                       "recorded (409, naming both)"})


class NamedDecisionSchema(DecisionSchema):
    checkpoint = fields.String(required=True, validate=validate.OneOf(gate_names()))


class ApprovalStatusSchema(Schema):
    checkpoint = fields.String(required=True)
    awaiting = fields.Boolean(required=True, metadata={"description": "a run waits at this gate"})
    run_id = fields.String(allow_none=True)
    plan = fields.Dict(allow_none=True)
    plan_fingerprint = fields.String(allow_none=True)
    gate = fields.Nested(GateSchema, allow_none=True)
    approved = fields.Boolean(required=True, metadata={"description": "a valid approval exists"})
    approval = fields.Nested(ApprovalSchema, allow_none=True)
    required = fields.List(fields.String(), required=True, metadata={
        "description": "what is still needed before the plan may be applied"})
    plan_error = fields.String(allow_none=True)
    min_approvals = fields.Integer(required=True, metadata={
        "description": "how many approvals this gate needs (approvals.policy)"})
    approvals = fields.List(fields.Nested(ApprovalSchema), required=True, metadata={
        "description": "the approvals of the awaiting plan that count so far (oldest first)"})


class RevokeSchema(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))

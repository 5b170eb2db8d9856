from marshmallow import Schema, fields

from api_server.resources.deployments.schemas import CheckpointResultSchema


class GateSchema(Schema):
    required = fields.Boolean(required=True)
    destructive = fields.Boolean(required=True)
    breaking = fields.Boolean(required=True, metadata={
        "description": "the plan leaves an app without a place to run: approving it needs "
                       "acknowledge_breaking"})
    risk = fields.String(required=True, metadata={
        "description": "none, approval, destructive or breaking"})
    reasons = fields.List(fields.String(), required=True)


class CheckpointSchema(Schema):
    order = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    gate_policy = fields.String(required=True)
    destructive = fields.Boolean(required=True, metadata={
        "description": "whether this checkpoint can be destructive (its gate may need "
                       "acknowledge_risks)"})
    last_result = fields.Nested(CheckpointResultSchema, allow_none=True)


class CheckpointListSchema(Schema):
    checkpoints = fields.List(fields.Nested(CheckpointSchema), required=True)


class CheckpointDetailSchema(CheckpointSchema):
    status = fields.String(required=True, metadata={"description": "status of the last result"})
    plan = fields.Dict(allow_none=True, metadata={"description": "what it would do now"})
    gate = fields.Nested(GateSchema, allow_none=True)
    plan_error = fields.String(allow_none=True)


class RunCheckpointSchema(Schema):
    approve = fields.Boolean(load_default=False, metadata={
        "description": "approve its gate as the caller if it needs one"})
    reason = fields.String(allow_none=True)
    acknowledge_risks = fields.Boolean(load_default=False)
    acknowledge_breaking = fields.Boolean(load_default=False)
    force = fields.Boolean(load_default=False)

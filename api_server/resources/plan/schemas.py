import json

from marshmallow import Schema, fields

from api_server.resources.checkpoints.schemas import GateSchema


class StepSchema(Schema):
    checkpoint = fields.String(required=True)
    plan = fields.Dict(allow_none=True, metadata={
        "description": "actions (kind, resource, name, details, impact, breaking), fingerprint"})
    fingerprint = fields.String(allow_none=True)
    gate = fields.Nested(GateSchema, allow_none=True)
    error = fields.String(allow_none=True, metadata={
        "description": "why this checkpoint's plan could not be made (it would fail)"})
    knock_on = fields.List(fields.String(), required=True, metadata={
        "description": "what earlier steps change for this one (a new head restarts all)"})


class JsonText(fields.String):
    """A config value of any type, as its JSON text (``2``, ``"a"``, ``null``, ``[1, 2]``)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return json.dumps(value, sort_keys=True)


class ConfigChangeSchema(Schema):
    key = fields.String(required=True)
    before = JsonText(metadata={"description": "the value at the last success, as JSON text; "
                                               "absent when the key is new"})
    after = JsonText(metadata={"description": "the value now, as JSON text; absent when the key "
                                              "is gone"})


class LastSuccessSchema(Schema):
    run_id = fields.String(required=True)
    at = fields.Float(required=True, metadata={"description": "Unix time, seconds"})


class PreviewSchema(Schema):
    generated_at = fields.Float(required=True, metadata={"description": "Unix time, seconds"})
    cluster_name = fields.String(required=True)
    platform = fields.String(required=True)
    config = fields.String(required=True)
    last_success = fields.Nested(LastSuccessSchema, allow_none=True)
    config_changes = fields.List(fields.Nested(ConfigChangeSchema), required=True, metadata={
        "description": "the effective config against the last successful run's"})
    checkpoints = fields.List(fields.Nested(StepSchema), required=True)
    fingerprints = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                               metadata={"description": "what --plan-file holds a run to"})


class PlanRequestSchema(Schema):
    desired = fields.Dict(required=True, metadata={
        "description": "the cluster as the caller's config describes it (see POST "
                       "/api/v1/deployments)"})

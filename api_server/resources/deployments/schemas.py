from marshmallow import Schema, fields, post_dump, validate

from api_server.redaction import WithoutSecrets
from checkpoints import ORDER
from core.facts import Outcome, RunStatus

TIME = {"description": "Unix time, seconds"}


class CheckpointResultSchema(Schema):
    checkpoint = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [str(o) for o in Outcome]})
    started_at = fields.Float(allow_none=True, metadata=TIME)
    finished_at = fields.Float(allow_none=True, metadata=TIME)
    duration = fields.Float(allow_none=True, metadata={"description": "seconds"})
    plan = fields.Dict(allow_none=True)
    fingerprint = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class RunSchema(Schema):
    id = fields.String(required=True)
    mode = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [str(s) for s in RunStatus]})
    requester = fields.String(required=True)
    source = fields.String(required=True)
    selection = fields.List(fields.String(), required=True)
    options = WithoutSecrets(metadata={
        "description": "how the run was started (an operation's parameters: the values of "
                       "env_vars and args shown as (redacted))"})
    error = fields.String(allow_none=True)
    failed_checkpoint = fields.String(allow_none=True, metadata={
        "description": "where the run stopped (failed, rejected or awaiting approval)"})
    created_at = fields.Float(metadata=TIME)
    updated_at = fields.Float(metadata=TIME)
    finished_at = fields.Float(allow_none=True, metadata=TIME)
    checkpoints = fields.List(fields.Nested(CheckpointResultSchema))
    attached = fields.Boolean(dump_default=False, metadata={
        "description": "the answer to a start with attach: an earlier run of the same desired "
                       "state, still going, rather than a new one"})

    @post_dump
    def _desired_digest_only(self, data, **kwargs):
        """A run's desired state is the caller's config: its digest is enough to tell runs
        apart (the sections may hold what only operators should read)."""
        options = data.get("options")
        if isinstance(options, dict) and "desired" in options:
            data["options"] = {k: v for k, v in options.items() if k != "desired"}
        return data


class RunListSchema(Schema):
    deployments = fields.List(fields.Nested(RunSchema), required=True)
    total = fields.Integer(required=True)


class RunListQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    status = fields.String(validate=validate.OneOf([str(s) for s in RunStatus]))


class StartRunSchema(Schema):
    start_from = fields.String(validate=validate.OneOf(ORDER), metadata={
        "description": "run from this checkpoint to the end"})
    checkpoints = fields.List(fields.String(validate=validate.OneOf(ORDER)),
                              validate=validate.Length(min=1), metadata={
                                  "description": "run exactly these (in deploy order)"})
    resume = fields.Boolean(load_default=False, metadata={
        "description": "continue the last failed, interrupted or awaiting run"})
    run_id = fields.String(metadata={"description": "with resume: which run"})
    force = fields.Boolean(load_default=False, metadata={
        "description": "re-run jobs that already succeeded for the same spec"})
    teardown = fields.Boolean(load_default=False, metadata={
        "description": "tear the cluster down (the destructive gate applies)"})
    desired = fields.Dict(metadata={
        "description": "the cluster as the caller's config describes it (what "
                       "`deploy_master.py --server` sends: cluster_name, platform, config "
                       "sections ray/head/workers/serve/monitoring/force_rebuild, jobs); the "
                       "run acts with this server's config with those sections replaced"})
    attach = fields.Boolean(load_default=False, metadata={
        "description": "if a run of the same desired state and selection is still going, "
                       "answer it (attached: true) instead of starting another"})


class EventQuerySchema(Schema):
    follow = fields.Boolean(load_default=True, metadata={
        "description": "keep the stream open until the run ends (false: send what exists)"})


class CancelSchema(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))

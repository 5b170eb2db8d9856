from marshmallow import Schema, fields, validate

TIME = {"description": "Unix time, seconds"}


class AuditEventSchema(Schema):
    seq = fields.Integer(required=True, metadata={"description": "position in the chain"})
    created_at = fields.Float(required=True, metadata=TIME)
    principal = fields.String(required=True, metadata={
        "description": "who acted: a token's principal, the CLI's OS user, or anonymous"})
    claimed_name = fields.String(allow_none=True)
    source = fields.String(required=True, metadata={
        "description": "cli, api, auto or file (store: audit.rekey, the store's own)"})
    client_address = fields.String(allow_none=True)
    action = fields.String(required=True, metadata={
        "description": "run.start, run.resume, run.cancel, approval.approve, approval.reject, "
                       "approval.revoke, approval.file (a refused approval file), node.add, "
                       "node.remove, app.deploy, app.delete, audit.rekey (an older store's "
                       "trail chained with the key)"})
    target = fields.String(required=True)
    plan_fingerprint = fields.String(allow_none=True)
    run_id = fields.String(allow_none=True)
    result = fields.String(required=True, metadata={"description": "ok, pending, refused, failed"})
    detail = fields.Dict(required=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class AuditHeadSchema(Schema):
    seq = fields.Integer(required=True, metadata={"description": "the last event"})
    hash = fields.String(required=True, metadata={
        "description": "its hash: keep it outside the store, and check later that the trail "
                       "still reaches it (/api/v1/audit/verify?expect_head=...)"})


HEAD = {"description": "where the trail ended when this was read (null: no events); an "
                       "export holds no event after it"}


class AuditListSchema(Schema):
    events = fields.List(fields.Nested(AuditEventSchema), required=True)
    total = fields.Integer(required=True)
    head = fields.Nested(AuditHeadSchema, allow_none=True, required=True, metadata=HEAD)


class AuditQuerySchema(Schema):
    since = fields.Float(validate=validate.Range(min=0, max=1e12),
                         metadata={"description": "Unix time: events at or after it"})
    action = fields.String(validate=validate.Length(max=100), metadata={
        "description": "an action, or its family (approval matches approval.*)"})
    principal = fields.String(validate=validate.Length(max=200))
    target = fields.String(validate=validate.Length(max=200))
    run_id = fields.String(validate=validate.Length(max=100))
    after_seq = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2 ** 62))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 100_000))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "ndjson"]),
                           metadata={"description": "ndjson: one event per line, streamed"})


class AuditVerifyQuerySchema(Schema):
    expect_head = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"), metadata={
        "description": "a head hash kept from an earlier export or notification: not intact "
                       "unless the trail still reaches it (events removed from the end, or "
                       "a rewritten trail, no longer do)"})


class AuditVerifySchema(Schema):
    intact = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "events verified"})
    problem = fields.String(allow_none=True, metadata={
        "description": "the first altered or missing event, or the expected head not reached"})
    head = fields.Nested(AuditHeadSchema, allow_none=True, required=True, metadata=HEAD)

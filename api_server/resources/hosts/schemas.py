from marshmallow import Schema, fields, validate

from api_server.resources.common import PendingSchema


class ForeignProcessSchema(Schema):
    pid = fields.Integer(required=True)
    command = fields.String(required=True)


class ForeignRaySchema(Schema):
    host = fields.String(required=True)
    session = fields.Integer(required=True, metadata={"description": "its session id there"})
    processes = fields.List(fields.Nested(ForeignProcessSchema), required=True)


class ForeignRayListSchema(Schema):
    foreign_ray = fields.List(fields.Nested(ForeignRaySchema), required=True, metadata={
        "description": "Ray on the platform's hosts that this tool did not start (empty on a "
                       "platform whose nodes run on nothing else's hosts)"})


class CleanupSchema(Schema):
    host = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1),
                         metadata={"description": "one host (its inventory name); every host "
                                                  "when left out"})


class StoppedSchema(Schema):
    host = fields.String(required=True)
    pid = fields.Integer(required=True)


class CleanupStartedSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "success (nothing to stop, or stopped), or awaiting_approval (HTTP "
                       "202: see `pending`)"})
    run_id = fields.String(metadata={"description": "the operation's run"})
    stopped = fields.List(fields.Nested(StoppedSchema))
    pending = fields.Nested(PendingSchema, metadata={"description": "what the run waits for"})

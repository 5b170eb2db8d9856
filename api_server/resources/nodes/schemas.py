from marshmallow import Schema, fields, validate

from api_server.resources.common import PendingSchema


class AddNodeSchema(Schema):
    cpu = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=1024))
    memory = fields.Float(load_default=2.0, validate=validate.Range(min=0.25, max=4096),
                          metadata={"description": "GB"})
    gpus = fields.Integer(load_default=0, validate=validate.Range(min=0, max=64))
    node_type = fields.String(load_default="worker", validate=validate.OneOf(["worker"]),
                              metadata={"description": "only workers are added; the head is "
                                                      "started by a deploy"})
    wait = fields.Boolean(load_default=True, metadata={
        "description": "answer once the node is ALIVE in Ray"})


OPERATION_STATUS = {"description": "success, or awaiting_approval (HTTP 202: see `pending`)"}


class NodeAddedSchema(Schema):
    status = fields.String(required=True, metadata=OPERATION_STATUS)
    run_id = fields.String(metadata={"description": "the operation's run"})
    app_id = fields.String(metadata={"description": "the new node's app (once added)"})
    app_name = fields.String()
    cpu = fields.Float(required=True)
    memory = fields.Float(required=True)
    gpus = fields.Integer(required=True)
    node_type = fields.String(required=True)
    pending = fields.Nested(PendingSchema, metadata={"description": "what the run waits for"})


class NodeRemovedSchema(Schema):
    status = fields.String(required=True, metadata=OPERATION_STATUS)
    run_id = fields.String(metadata={"description": "the operation's run"})
    app_id = fields.String(required=True)
    app_name = fields.String()
    pending = fields.Nested(PendingSchema, metadata={"description": "what the run waits for"})


class NodeSchema(Schema):
    node_id = fields.String(allow_none=True)
    node_name = fields.String(allow_none=True)
    node_ip = fields.String(allow_none=True)
    node_type = fields.String(required=True)
    platform_app_id = fields.String(allow_none=True)
    platform_app_name = fields.String(allow_none=True)
    platform_status = fields.String(allow_none=True)
    alive = fields.Boolean(required=True)
    resources = fields.Dict(keys=fields.String(), values=fields.Float())
    resources_used = fields.Dict(keys=fields.String(), values=fields.Float())


class NodeListSchema(Schema):
    nodes = fields.List(fields.Nested(NodeSchema), required=True)
    total_nodes = fields.Integer(required=True)
    alive_nodes = fields.Integer(required=True)


class CapacitySchema(Schema):
    total_cpus = fields.Float(required=True)
    available_cpus = fields.Float(required=True)
    total_memory = fields.Float(required=True, metadata={"description": "GB"})
    available_memory = fields.Float(required=True, metadata={"description": "GB"})
    total_gpus = fields.Float(required=True)
    available_gpus = fields.Float(required=True)
    utilization_percent = fields.Float(required=True, metadata={"description": "CPU in use"})

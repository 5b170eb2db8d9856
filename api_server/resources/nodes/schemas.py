from dataclasses import asdict

from marshmallow import Schema, fields, pre_dump, validate

from api_server.resources.common import PendingSchema, UnixTimeAsIso
from core.records import NodeView


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
    platform_app_id = fields.String(allow_none=True, metadata={
        "description": "the node's application on the platform (null: a Ray node no app of "
                       "this cluster runs)"})
    platform_app_name = fields.String(allow_none=True)
    platform_status = fields.String(allow_none=True)
    last_deployed_time = fields.Float(allow_none=True, metadata={
        "description": "when the node's platform app was created (started), Unix time, s"})
    last_deployed_at = UnixTimeAsIso(allow_none=True, metadata={
        "description": "last_deployed_time as ISO 8601, UTC"})
    # the seed tool's names for the same values, so its clients keep working
    cml_app_id = fields.String(allow_none=True, metadata={
        "description": "platform_app_id, under the seed tool's name"})
    cml_app_name = fields.String(allow_none=True, metadata={
        "description": "platform_app_name, under the seed tool's name"})
    alive = fields.Boolean(required=True)
    resources = fields.Dict(keys=fields.String(), values=fields.Float())
    resources_used = fields.Dict(keys=fields.String(), values=fields.Float())

    @pre_dump
    def _also_seed_names(self, node: NodeView, **kwargs) -> dict:
        return {**asdict(node), "cml_app_id": node.platform_app_id,
                "cml_app_name": node.platform_app_name, "last_deployed_time": node.deployed_at,
                "last_deployed_at": node.deployed_at}


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

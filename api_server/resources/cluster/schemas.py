from marshmallow import Schema, fields

from api_server.resources.nodes.schemas import CapacitySchema


class ClusterStatusSchema(Schema):
    healthy = fields.Boolean(required=True)
    total_nodes = fields.Integer(required=True)
    alive_nodes = fields.Integer(required=True)
    total_applications = fields.Integer(required=True)
    resources = fields.Nested(CapacitySchema, required=True)


class ClusterInfoSchema(Schema):
    head_address = fields.String(allow_none=True)
    head_url = fields.String(allow_none=True, metadata={
        "description": "where the platform publishes the head app (its public URL, behind "
                       "the platform's login), if it does: the Serve apps from outside"})
    dashboard_url = fields.String(allow_none=True, metadata={
        "description": "the Ray dashboard, also the address `ray job submit --address` takes"})
    client_address = fields.String(allow_none=True, metadata={
        "description": "the head's Ray Client server (`ray.init(\"ray://...\")`), reachable "
                       "where the head address is"})
    management_api_url = fields.String(allow_none=True)
    serve_url = fields.String(allow_none=True)
    prometheus_url = fields.String(allow_none=True, metadata={
        "description": "the cluster's Prometheus (monitoring.enabled), else null"})
    ray_version = fields.String(allow_none=True)
    cluster_name = fields.String(required=True)
    platform = fields.String(required=True)


class CheckSchema(Schema):
    name = fields.String(required=True)
    ok = fields.Boolean(required=True)
    detail = fields.String(required=True)


class ClusterHealthSchema(Schema):
    healthy = fields.Boolean(required=True)
    checks = fields.List(fields.Nested(CheckSchema), required=True)

from marshmallow import Schema, fields, validate

from cluster.config import APP_NAME, IMPORT_PATH, ROUTE_PREFIX


class DeployAppSchema(Schema):
    name = fields.String(required=True, validate=APP_NAME)
    import_path = fields.String(required=True, validate=IMPORT_PATH)
    route_prefix = fields.String(required=True, validate=ROUTE_PREFIX)
    num_replicas = fields.Integer(validate=validate.Range(min=1, max=1000))
    ray_actor_options = fields.Dict()
    args = fields.Dict()
    runtime_env = fields.Dict()


class AppDeployedSchema(Schema):
    status = fields.String(required=True)
    name = fields.String(required=True)
    route_prefix = fields.String(required=True)


class AppSummarySchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True)
    route_prefix = fields.String(allow_none=True)
    num_replicas = fields.Integer(required=True)
    message = fields.String(allow_none=True)
    last_deployed_time = fields.Float(allow_none=True, metadata={"description": "Unix time, s"})


class AppListSchema(Schema):
    applications = fields.List(fields.Nested(AppSummarySchema), required=True)
    total_applications = fields.Integer(required=True)


class ReplicaSchema(Schema):
    replica_id = fields.String()
    state = fields.String()
    node_ip = fields.String(allow_none=True)


class DeploymentSchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(allow_none=True)
    num_replicas = fields.Integer(required=True)
    replicas = fields.List(fields.Nested(ReplicaSchema))


class AppDetailSchema(AppSummarySchema):
    deployments = fields.List(fields.Nested(DeploymentSchema), required=True)
    deployed_config = fields.Dict(allow_none=True)


class AppDeletedSchema(Schema):
    status = fields.String(required=True)
    name = fields.String(required=True)

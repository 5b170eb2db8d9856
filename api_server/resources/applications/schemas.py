from marshmallow import RAISE, Schema, fields, validate

from api_server.redaction import WithoutSecrets
from api_server.resources.common import PendingSchema, UnixTimeAsIso
from cluster.config import APP_NAME, IMPORT_PATH, ROUTE_PREFIX
from cluster.serve_policy import ACTOR_RESOURCES


class ActorOptionsSchema(Schema):
    """Resources only: what runs (runtime_env) is the app's own, checked on its own."""
    class Meta:
        unknown = RAISE

    num_cpus = fields.Float(validate=validate.Range(0, ACTOR_RESOURCES["num_cpus"]))
    num_gpus = fields.Float(validate=validate.Range(0, ACTOR_RESOURCES["num_gpus"]))
    memory = fields.Float(validate=validate.Range(0, ACTOR_RESOURCES["memory"]),
                          metadata={"description": "bytes"})
    object_store_memory = fields.Float(validate=validate.Range(
        0, ACTOR_RESOURCES["object_store_memory"]), metadata={"description": "bytes"})
    resources = fields.Dict(keys=fields.String(validate=validate.Length(1, 100)),
                            values=fields.Float(validate=validate.Range(0, 1e6)))


class DeployAppSchema(Schema):
    name = fields.String(required=True, validate=APP_NAME)
    import_path = fields.String(required=True, validate=IMPORT_PATH, metadata={
        "description": "module:attribute, under serve.allowed_import_prefixes (it is imported "
                       "on the cluster, never by this server)"})
    route_prefix = fields.String(required=True, validate=ROUTE_PREFIX)
    num_replicas = fields.Integer(validate=validate.Range(min=1, max=1000))
    ray_actor_options = fields.Nested(ActorOptionsSchema)
    args = fields.Dict(metadata={"description": "passed to the app's builder function"})
    runtime_env = fields.Dict(metadata={
        "description": "only the keys in serve.allowed_runtime_env_keys (default env_vars and "
                       "a working_dir inside the project); env_vars names must match "
                       "serve.allowed_env_vars (default APP_*), never loader or interpreter "
                       "variables"})


class AppDeployedSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "success (deploying), or awaiting_approval (see `pending`)"})
    run_id = fields.String(metadata={"description": "the operation's run"})
    name = fields.String(required=True)
    route_prefix = fields.String(required=True)
    pending = fields.Nested(PendingSchema, metadata={"description": "what the run waits for"})


class AppSummarySchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True)
    route_prefix = fields.String(allow_none=True)
    num_replicas = fields.Integer(required=True)
    message = fields.String(allow_none=True)
    last_deployed_time = fields.Float(allow_none=True, metadata={"description": "Unix time, s"})
    last_deployed_at = UnixTimeAsIso(allow_none=True, metadata={
        "description": "last_deployed_time as ISO 8601, UTC"})


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
    deployed_config = WithoutSecrets(allow_none=True, metadata={
        "description": "the config Serve runs, the values of env_vars and args shown as "
                       "(redacted)"})


class AppDeletedSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "success, or awaiting_approval (HTTP 202: see `pending`)"})
    run_id = fields.String(metadata={"description": "the operation's run"})
    name = fields.String(required=True)
    pending = fields.Nested(PendingSchema, metadata={"description": "what the run waits for"})

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api_server.resources.common import services

blp = Blueprint("health", __name__, description="Liveness of the API and what it can reach")


class HealthSchema(Schema):
    status = fields.String(required=True)
    ray_connected = fields.Boolean(required=True)
    platform_available = fields.Boolean(required=True)
    cai_available = fields.Boolean(required=True, metadata={
        "description": "Same as platform_available (kept for older clients)"})
    cluster_name = fields.String(required=True, metadata={
        "description": "the cluster this server manages (a client checks it before it sends "
                       "a token)"})
    platform = fields.String(required=True)
    control_plane = fields.Boolean(required=True, metadata={
        "description": "this server owns the store and runs the runs"})


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """API liveness, and whether Ray and the platform answer"""
        svc = services()
        try:
            ray_ok = svc.ray_connected()
        except Exception:  # any failure to reach Ray is "not connected", not an error
            ray_ok = False
        platform_ok = svc.platform_available()
        return {"status": "healthy", "ray_connected": ray_ok, "platform_available": platform_ok,
                "cai_available": platform_ok, "cluster_name": svc.config.cluster_name,
                "platform": svc.config.platform, "control_plane": svc.control_plane}

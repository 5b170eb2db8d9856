import importlib.metadata

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.resources.cluster.schemas import ClusterHealthSchema, ClusterInfoSchema, ClusterStatusSchema
from api_server.resources.common import services

blp = Blueprint("cluster", __name__, url_prefix="/api/v1/cluster",
                description="The cluster as a whole: status, addresses, health checks")


@blp.route("/status")
class Status(MethodView):
    @blp.response(200, ClusterStatusSchema)
    def get(self):
        """Health, node counts, application count and capacity (cached ~1 s)"""
        return services().status()


@blp.route("/info")
class Info(MethodView):
    @blp.response(200, ClusterInfoSchema)
    def get(self):
        """Where things are: head address, dashboard, Serve proxy, and the management API
        (the one hosted on the cluster by Serve; this server's own URL when that is off)"""
        info = services().cluster.info()
        return {**info, "management_api_url": info["management_api_url"]
                or request.host_url.rstrip("/"), "ray_version": importlib.metadata.version("ray")}


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, ClusterHealthSchema)
    def get(self):
        """The live checks `python -m validation` runs, one result each"""
        checks = services().health_checks()
        return {"healthy": all(c["ok"] for c in checks), "checks": checks}

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.resources.common import run_operation, services
from api_server.resources.hosts.schemas import (
    CleanupSchema,
    CleanupStartedSchema,
    ForeignRayListSchema,
)
from checkpoints.host_cleanup import HostCleanup
from core.errors import Conflict, Invalid, NotFound, Unavailable

blp = Blueprint("hosts", __name__, url_prefix="/api/v1/hosts",
                description="The platform's own hosts (ssh): Ray on them that this tool did not "
                            "start, and stopping it: an operation that always needs a "
                            "destructive approval, audited")


@blp.route("/foreign-ray")
class ForeignRay(MethodView):
    @blp.response(200, ForeignRayListSchema)
    @raises(blp, NotFound, Unavailable, notfound="no such host in the inventory")
    def get(self):
        """Ray on the hosts that this tool did not start: each session's processes (pid,
        command); `?host=` for one host"""
        found = services().ctx.platform.foreign_ray(request.args.get("host") or None)
        return {"foreign_ray": [{"host": f.host, "session": f.session, "processes": [
            {"pid": pid, "command": command} for pid, _, command in f.processes]} for f in found]}


@blp.route("/cleanup")
class Cleanup(MethodView):
    @blp.arguments(CleanupSchema)
    @blp.response(200, CleanupStartedSchema)
    @blp.alt_response(202, schema=CleanupStartedSchema,
                      description="Ray was found: stopping it waits for a destructive "
                                  "approval (`pending` shows exactly which processes)")
    @raises(blp, Invalid, NotFound, Conflict, Unavailable, notfound="no such host in the inventory",
            conflict="a run holds the cluster lease")
    def post(self, body):
        """Stop Ray that this tool did not start on the hosts (exactly the processes the
        plan shows, each only while it is still the process seen)"""
        answer, status = run_operation(HostCleanup(host=body["host"]))
        return {"stopped": [], **answer}, status or 200

from flask.views import MethodView
from flask_smorest import Blueprint

from api_server import redaction
from api_server.errors import raises
from api_server.resources.common import sees_paths, services
from api_server.resources.plan.schemas import PlanRequestSchema, PreviewSchema
from checkpoints.factory import make_context
from checkpoints.preview import preview
from core.errors import Invalid

blp = Blueprint("plan", __name__, url_prefix="/api/v1/plan",
                description="The whole run, planned from the live cluster before anything changes")


def for_caller(planned: dict) -> dict:
    """The preview without secrets (the config's changes), and without paths for a viewer."""
    sees = sees_paths()
    return {**planned, "config": redaction.config_name(planned["config"], sees),
            "config_changes": [redaction.config_change(c, sees)
                               for c in planned["config_changes"]]}


@blp.route("")
class Plan(MethodView):
    @blp.response(200, PreviewSchema)
    def get(self):
        """Every checkpoint's plan, gate and impact, with knock-on effects and the config's
        changes since the last successful run (what `deploy_master.py plan` prints; planned
        at most a few seconds ago: RAYDEPLOY_PLAN_CACHE_SECONDS, 10)"""
        svc = services()
        return for_caller(svc.plans.get("preview", lambda: preview(svc.ctx)))

    @blp.arguments(PlanRequestSchema)
    @blp.response(200, PreviewSchema)
    @raises(blp, Invalid)
    def post(self, body):
        """The same, for a desired state the caller sends (what `deploy_master.py --server
        URL plan` shows before a run): nothing is changed or recorded"""
        svc = services()
        return for_caller(preview(make_context(svc.config_for(body["desired"]), store=svc.store)))

from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.resources.common import services
from api_server.resources.plan.schemas import PreviewSchema
from checkpoints.preview import preview

blp = Blueprint("plan", __name__, url_prefix="/api/v1/plan",
                description="The whole run, planned from the live cluster before anything changes")


@blp.route("")
class Plan(MethodView):
    @blp.response(200, PreviewSchema)
    def get(self):
        """Every checkpoint's plan, gate and impact, with knock-on effects and the config's
        changes since the last successful run (what `deploy_master.py plan` prints)"""
        return preview(services().ctx)

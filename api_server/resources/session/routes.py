from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.resources.common import actor, auth_enabled, services
from api_server.resources.session.schemas import WhoAmISchema

blp = Blueprint("session", __name__, url_prefix="/api/v1",
                description="Who the caller is (what a UI may offer them)")

ALL_ROLES = ["viewer", "operator", "approver"]


@blp.route("/whoami")
class WhoAmI(MethodView):
    @blp.response(200, WhoAmISchema)
    def get(self):
        """The caller's principal and roles (without tokens: anonymous, every role)"""
        caller = actor()
        enabled = auth_enabled()
        roles = [r for r in ALL_ROLES if caller.can(r)] if enabled else ALL_ROLES
        return {"principal": caller.principal, "roles": roles, "auth_enabled": enabled,
                "forbid_self_approval": services().config.approvals.forbid_self_approval}

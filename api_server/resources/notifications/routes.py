from dataclasses import replace

from flask.views import MethodView
from flask_smorest import Blueprint

from api_server import redaction
from api_server.resources.common import actor, sees_paths, services
from api_server.resources.notifications.schemas import (
    DeliveryListSchema,
    DeliveryQuerySchema,
)
from checkpoints import audit

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="Notification deliveries (webhooks, Slack): what was sent, and how it "
                            "went")

TEST_WAIT_SECONDS = 10


def listing(deliveries) -> dict:
    config, sees = services().config, sees_paths()
    if not sees:  # the approve command names the config file
        deliveries = [replace(d, payload={**d.payload, "approve_command": redaction.command(
            d.payload["approve_command"], str(config.source), sees)})
            if "approve_command" in d.payload else d for d in deliveries]
    return {"deliveries": deliveries, "targets": [t.name for t in config.notifications.targets]}


@blp.route("")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliveryListSchema)
    def get(self, query):
        """Deliveries, newest first (filter by status and event)"""
        return listing(services().store.deliveries.recent(**query))


@blp.route("/test")
class TestDelivery(MethodView):
    @blp.response(200, DeliveryListSchema)
    def post(self):
        """Send a `test` event to every target; answers when they are delivered or failed
        (at most 10 s: a slower one is still `pending` in the answer)"""
        svc = services()
        sent = svc.ctx.notifier.emit("test", message="a test from raydeploy")
        audit.record(svc.store, actor(), "notification.test", "notifications", "ok",
                     deliveries=[d.id for d in sent])
        svc.ctx.notifier.flush(TEST_WAIT_SECONDS)
        return listing([svc.store.deliveries.get_delivery(d.id) for d in sent])

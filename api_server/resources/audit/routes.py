import json
from dataclasses import asdict

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.resources.audit.schemas import (
    AuditListSchema,
    AuditQuerySchema,
    AuditVerifySchema,
)
from api_server.resources.common import services

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit",
                description="The audit trail: every mutation, from every path, hash-chained")


@blp.route("")
class Audit(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditListSchema)
    @blp.doc(responses={"200": {"description": "the events (json), or one a line (ndjson)",
                                "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/AuditList"}},
        "application/x-ndjson": {"schema": {
            "type": "string", "description": "format=ndjson: one JSON event per line"}}}}})
    def get(self, query):
        """Audit events in order, filtered (format=ndjson streams them, one per line)"""
        fmt = query.pop("format")
        events = services().store.audit_events(**query)
        if fmt == "ndjson":
            lines = (json.dumps(asdict(e), sort_keys=True) + "\n" for e in events)
            return Response(stream_with_context(lines), mimetype="application/x-ndjson")
        events = list(events)
        return {"events": events, "total": len(events)}


@blp.route("/verify")
class AuditVerify(MethodView):
    @blp.response(200, AuditVerifySchema)
    def get(self):
        """Walk the hash chain: is every event intact, and none missing?"""
        checked, problem = services().store.verify_audit()
        return {"intact": problem is None, "checked": checked, "problem": problem}

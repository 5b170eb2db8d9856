import json
from dataclasses import asdict

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.resources.audit.schemas import (
    AuditListSchema,
    AuditQuerySchema,
    AuditVerifyQuerySchema,
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
        """Audit events in order, filtered, up to the trail's head (format=ndjson streams
        them, one per line, and ends with a line {"audit_head": {seq, hash}})"""
        fmt = query.pop("format")
        store = services().store
        head = store.audit_log.audit_head()
        events = store.audit_log.audit_events(**query, up_to_seq=head["seq"] if head else 0)
        if fmt == "ndjson":
            def lines():
                for event in events:
                    yield json.dumps(asdict(event), sort_keys=True) + "\n"
                yield json.dumps({"audit_head": head}, sort_keys=True) + "\n"
            return Response(stream_with_context(lines()), mimetype="application/x-ndjson")
        events = list(events)
        return {"events": events, "total": len(events), "head": head}


@blp.route("/verify")
class AuditVerify(MethodView):
    @blp.arguments(AuditVerifyQuerySchema, location="query")
    @blp.response(200, AuditVerifySchema)
    def get(self, query):
        """Walk the keyed hash chain: is every event intact, none missing, and (expect_head)
        does the trail still reach a head kept from earlier?"""
        check = services().store.audit_log.verify_audit(expect_head=query.get("expect_head"))
        return {"intact": check.problem is None, "checked": check.checked,
                "problem": check.problem, "head": check.head}

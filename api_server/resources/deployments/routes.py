import json
from dataclasses import asdict

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import TooManyRequests, raises
from api_server.resources.common import actor, services
from api_server.resources.deployments.schemas import (
    CancelSchema,
    EventQuerySchema,
    RunListQuerySchema,
    RunListSchema,
    RunSchema,
    StartRunSchema,
)
from checkpoints import ORDER
from checkpoints.runs import cancel
from core.errors import Conflict, Invalid, NotFound
from core.facts import FINISHED
from core.records import Run
from core.timing import SYSTEM_CLOCK

blp = Blueprint("deployments", __name__, url_prefix="/api/v1/deployments",
                description="Deployment runs: start, follow, cancel")


def get_run_or_404(run_id: str) -> Run:
    run = services().store.runs.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


@blp.route("")
class Runs(MethodView):
    @blp.arguments(RunListQuerySchema, location="query")
    @blp.response(200, RunListSchema)
    def get(self, query):
        """List runs, newest first"""
        runs = services().store.runs.list_runs(limit=query["limit"],
                                          statuses=[query["status"]] if "status" in query else None)
        return {"deployments": runs, "total": len(runs)}

    @blp.arguments(StartRunSchema)
    @blp.response(202, RunSchema)
    @raises(blp, Invalid, NotFound, Conflict, conflict="another run holds the cluster lease",
            notfound="resume: no such run")
    def post(self, body):
        """Start a deployment run in the background (202: follow it with GET or /events);
        ``desired``: the cluster as the caller's config describes it; ``attach``: the same
        desired state's run that is still going, if any, instead of a new one"""
        if body.get("start_from") and body.get("checkpoints"):
            raise Invalid("give start_from or checkpoints, not both", field="checkpoints")
        svc = services()
        common = {"force": body["force"], "desired": body.get("desired"), "attach": body["attach"]}
        if body["resume"]:
            started = svc.runs.start(actor(), resume=True, run_id=body.get("run_id"), **common)
        elif body.get("checkpoints"):
            selection = [name for name in ORDER if name in body["checkpoints"]]
            started = svc.runs.start(actor(), mode="checkpoints", selection=selection, **common)
        elif body.get("start_from"):
            started = svc.runs.start(actor(), mode="start_from", checkpoint=body["start_from"],
                                     **common)
        elif body.get("teardown"):
            started = svc.runs.start(actor(), mode="teardown", **common)
        else:
            started = svc.runs.start(actor(), **common)
        return {**asdict(started.run), "attached": started.attached}


@blp.route("/<run_id>")
class Run(MethodView):
    @blp.response(200, RunSchema)
    @raises(blp, NotFound)
    def get(self, run_id):
        """One run: per-checkpoint results, timings, failure details"""
        return get_run_or_404(run_id)


@blp.route("/<run_id>/cancel")
class CancelRun(MethodView):
    @blp.arguments(CancelSchema)
    @blp.response(200, RunSchema)
    @raises(blp, NotFound, Conflict, conflict="the run already ended")
    def post(self, body, run_id):
        """Cancel a run (it stops at its next step; a wait for approval ends at once)"""
        get_run_or_404(run_id)
        return cancel(services().store, run_id, actor(), body.get("reason"))


@blp.route("/<run_id>/events")
class RunEvents(MethodView):
    @blp.arguments(EventQuerySchema, location="query")
    @blp.doc(responses={"200": {
        "description": "Server-Sent Events: one event per step of the run (`id` is the event "
                       "id, `event` its kind, `data` JSON); `event: end` when the run has ended. "
                       "Reconnect with `Last-Event-ID` to continue.",
        "content": {"text/event-stream": {"schema": {
            "type": "object", "properties": {
                "id": {"type": "string"}, "event": {"type": "string"},
                "data": {"type": "string", "description": "JSON: kind, checkpoint, message, "
                                                          "data, created_at"}}}}}}})
    @raises(blp, NotFound, TooManyRequests)
    def get(self, query, run_id):
        """Live progress of a run, as Server-Sent Events (a stream ends after
        api.sse_max_seconds; EventSource reconnects with Last-Event-ID by itself)"""
        get_run_or_404(run_id)
        svc = services()
        store, lifetime = svc.store, svc.config.api.sse_max_seconds
        try:
            after = int(request.headers.get("Last-Event-ID") or 0)
        except ValueError:
            after = 0
        follow = query["follow"]
        release = svc.streams.acquire(actor().principal)  # 429 when no slot is free

        def stream():
            nonlocal after
            started = quiet_since = SYSTEM_CLOCK.monotonic()
            yield "retry: 2000\n\n"  # how long EventSource waits before reconnecting
            while True:
                status = store.runs.get_run(run_id).status
                for event in store.events.read(run_id=run_id, after_id=after):
                    after = event.id
                    data = {"kind": event.kind, "checkpoint": event.checkpoint,
                            "message": event.message, "data": event.data,
                            "created_at": event.created_at}
                    yield f"id: {after}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n"
                    quiet_since = SYSTEM_CLOCK.monotonic()
                if status in FINISHED or not follow:
                    yield f"event: end\ndata: {json.dumps({'status': str(status)})}\n\n"
                    return
                if SYSTEM_CLOCK.monotonic() - started > lifetime:
                    return  # the client reconnects with Last-Event-ID
                if SYSTEM_CLOCK.monotonic() - quiet_since > 15:
                    yield ": keep-alive\n\n"
                    quiet_since = SYSTEM_CLOCK.monotonic()
                SYSTEM_CLOCK.sleep(0.25)

        response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        response.call_on_close(release)  # the slot is freed however the stream ends
        return response

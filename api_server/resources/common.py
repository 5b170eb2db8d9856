"""Small helpers shared by the resources."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, g, request
from marshmallow import Schema, fields

from api_server import redaction
from api_server.resources.checkpoints.schemas import GateSchema
from api_server.services import Services
from checkpoints.access import Actor, Principals
from checkpoints.background import OperationStarted
from checkpoints.operations import Operation
from core.commands import approve_command
from core.errors import Unavailable
from core.facts import RunStatus


class UnixTimeAsIso(fields.DateTime):
    """A Unix time (seconds) dumped as ISO 8601 in UTC, e.g. ``2025-01-02T03:04:05.123Z``
    (what the seed tool's clients read; the spec says string/date-time)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        stamp = datetime.fromtimestamp(float(value), tz=UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def services() -> Services:
    return current_app.extensions["raydeploy"]


def principals() -> Principals:
    return current_app.extensions["raydeploy.principals"]


def auth_enabled() -> bool:
    return principals().enabled


def sees_paths() -> bool:
    """Where the control plane keeps its config and state is for operators, not viewers."""
    return actor().can("operator")


def actor(claimed: str | None = None) -> Actor:
    """Who acts: the token's principal. Without tokens (a loopback-only server) nobody is
    known: "anonymous", with whatever name the caller claims beside it, never instead."""
    principal = g.get("principal")
    address = g.get("client_address") or request.remote_addr  # behind a trusted proxy: its word
    if principal is not None:
        return Actor(principal.name, "api", principal.roles, client_address=address,
                     claimed_name=claimed if claimed and claimed != principal.name else None)
    return Actor("anonymous", "api", claimed_name=claimed, client_address=address)


class PendingSchema(Schema):
    """What a gated operation waits for."""
    run_id = fields.String(required=True)
    checkpoint = fields.String(required=True, metadata={
        "description": "the gate's name: approve it at /api/v1/approvals/{checkpoint}"})
    plan_fingerprint = fields.String(required=True)
    plan = fields.Dict(required=True)
    gate = fields.Nested(GateSchema, required=True)
    approve_with = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                               metadata={"description": "the API call and the CLI command"})


def run_operation(op: Operation) -> tuple[dict, int | None]:
    """Run ``op`` for the caller. Returns (answer fields, status): no gate -> what it
    produced and None (the route's own status); a gate -> the run and what it waits for,
    202. An operation that ran and failed is an error (503) naming its run."""
    started: OperationStarted = services().runs.run_operation(actor(), op)
    run = started.run
    if started.gate.required:
        command = approve_command(op.name, started.gate.destructive, started.gate.breaking,
                                  config=str(services().config.source))
        return {"status": "awaiting_approval", "run_id": run.id, "pending": {
            "run_id": run.id, "checkpoint": op.name, "plan_fingerprint": started.plan.fingerprint,
            "plan": started.plan.to_dict(), "gate": started.gate.to_dict(),
            "approve_with": {"api": f"POST /api/v1/approvals/{op.name}",
                             "cli": redaction.command(command, str(services().config.source),
                                                      sees_paths())}},
            **started.result}, 202
    if run.status != RunStatus.SUCCEEDED:
        raise Unavailable(f"{op.action} {op.target} failed (run {run.id}): {run.error}")
    services().invalidate()
    return {"status": "success", "run_id": run.id, **started.result}, None

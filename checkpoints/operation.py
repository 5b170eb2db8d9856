"""The base of operations (checkpoints/operations.py): a one-step run through the engine, its
parameters in the run's options, gated by ``approvals.operations``."""
from __future__ import annotations

from typing import ClassVar

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import NO_GATE, Gate, Plan, breaking_reasons, policy_for


class Operation(Checkpoint):
    action: ClassVar[str] = ""  # what the audit trail calls it, e.g. "node.remove"

    def __init__(self, **params):
        self.params = params
        self.result: dict = {}  # what the apply produced, for the API's answer

    @property
    def target(self) -> str:
        raise NotImplementedError

    def options(self) -> dict:
        return {"operation": {"name": self.name, "params": self.params}}

    def precheck(self, ctx: Context) -> None:
        """Refuse (NotFound, Conflict, Invalid) before any run is recorded."""

    def policy_key(self, plan: Plan) -> str:
        return self.name

    def gate(self, plan: Plan, config) -> Gate:
        if plan.empty:
            return NO_GATE
        key = self.policy_key(plan)
        if config.approvals.operations.get(key, "approval") == "none":
            return NO_GATE
        reasons = [f"approvals.operations.{key} is 'approval'"]
        destructive = [a.describe() for a in plan.actions if a.destructive]
        if destructive:
            reasons.append("destructive: " + "; ".join(destructive))
        reasons += breaking_reasons(plan)
        return Gate(required=True, destructive=bool(destructive), reasons=tuple(reasons),
                    breaking=plan.breaking, policy=policy_for(config, self.name))

"""Plans, actions and gates.

A plan lists what a checkpoint must change, found by looking at the live platform and cluster.
Its fingerprint (hash of its canonical JSON) is what an approval is given for, so the details
of an action must be stable: names and settings, never timestamps or pids.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    RUN = "run"
    CLEANUP = "cleanup"  # remove what already failed or stopped
    WAIT = "wait"  # submitted earlier, not reached yet: wait for it (with a deadline)


DESTRUCTIVE_KINDS = frozenset({Kind.DELETE, Kind.REPLACE})


@dataclass(frozen=True)
class Action:
    kind: Kind
    resource: str  # what kind of thing: worker, workers, head, app, job, project, ...
    name: str | None = None  # which one (None for a group, e.g. "create workers")
    details: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"{self.resource} {self.name}" if self.name else self.resource

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_KINDS

    def to_dict(self) -> dict:
        return {"kind": str(self.kind), "resource": self.resource, "name": self.name,
                "target": self.target, "details": self.details, "destructive": self.destructive}

    @classmethod
    def from_dict(cls, data: dict) -> Action:
        return cls(Kind(data["kind"]), data["resource"], data.get("name"),
                   dict(data.get("details") or {}))

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.details.items()))
        return f"{self.kind} {self.target}" + (f" ({extra})" if extra else "")


@dataclass(frozen=True)
class Plan:
    checkpoint: str
    actions: tuple[Action, ...] = ()
    notes: tuple = ()  # what was looked at; not part of the fingerprint

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def destructive(self) -> bool:
        return any(a.destructive for a in self.actions)

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps({"checkpoint": self.checkpoint,
                                "actions": [[str(a.kind), a.resource, a.name, a.details]
                                            for a in self.actions]},
                               sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def names(self, *kinds: Kind) -> list[str]:
        """The names the plan's actions (of these kinds, or all) act on."""
        return [a.name for a in self.actions if a.name and (not kinds or a.kind in kinds)]

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "fingerprint": self.fingerprint,
                "destructive": self.destructive, "actions": [a.to_dict() for a in self.actions],
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(data["checkpoint"], tuple(Action.from_dict(a) for a in data["actions"]),
                   tuple(data.get("notes") or ()))


@dataclass(frozen=True)
class Gate:
    """Whether a plan needs an approval before it is applied, and why."""
    required: bool
    destructive: bool
    reasons: tuple = ()

    @property
    def risk(self) -> str:
        return "destructive" if self.destructive else ("approval" if self.required else "none")

    def to_dict(self) -> dict:
        return {"required": self.required, "destructive": self.destructive, "risk": self.risk,
                "reasons": list(self.reasons)}


NO_GATE = Gate(required=False, destructive=False)


def gate_for(checkpoint, plan: Plan, required_by_config: tuple = ()) -> Gate:
    """The checkpoint's own policy, plus destructive actions, plus ``approvals.required``."""
    if plan.empty:
        return NO_GATE
    reasons = list(checkpoint.approval_reasons(plan))
    destructive = [a.describe() for a in plan.actions if a.destructive]
    if destructive:
        reasons.append("destructive: " + "; ".join(destructive))
    if checkpoint.name in required_by_config:
        reasons.append("approvals.required lists this checkpoint")
    return Gate(required=bool(reasons), destructive=bool(destructive), reasons=tuple(reasons))

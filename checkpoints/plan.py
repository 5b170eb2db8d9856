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

from core.records import ApprovalPolicy


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    RUN = "run"
    CLEANUP = "cleanup"  # remove what already failed or stopped
    WAIT = "wait"  # submitted earlier, not reached yet: wait for it (with a deadline)
    CHECK = "check"  # nothing to change: prove the goal holds (validation)


DESTRUCTIVE_KINDS = frozenset({Kind.DELETE, Kind.REPLACE})
CHANGE_KEYS = ("changes", "settings")  # details shown a setting a line


@dataclass(frozen=True)
class Action:
    kind: Kind
    resource: str  # what kind of thing: worker, workers, head, app, job, project, ...
    name: str | None = None  # which one (None for a group, e.g. "create workers")
    details: dict = field(default_factory=dict)  # fingerprinted: names and settings only
    # what it displaces, in numbers for people (replicas, bytes, jobs): they move while a
    # plan waits, so they are shown, not fingerprinted; what it breaks is in details["breaks"]
    impact: dict | None = field(default=None, compare=False)
    # a keyed hash of the values the details redact (checkpoints.changes): fingerprinted,
    # never shown, not recorded with the plan (a plan read back keeps its fingerprint)
    sealed: str | None = None

    @property
    def target(self) -> str:
        return f"{self.resource} {self.name}" if self.name else self.resource

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_KINDS

    @property
    def breaks(self) -> list[str]:
        """The apps (or actors) this leaves without a place to run."""
        return list(self.details.get("breaks") or [])

    def to_dict(self) -> dict:
        return {"kind": str(self.kind), "resource": self.resource, "name": self.name,
                "target": self.target, "details": self.details, "destructive": self.destructive,
                "breaking": bool(self.breaks), "impact": self.impact}

    @classmethod
    def from_dict(cls, data: dict) -> Action:
        resource, name = data.get("resource"), data.get("name")
        if resource is None:  # recorded before actions were structured: "worker ray-w-2"
            resource, _, name = (data.get("target") or "?").partition(" ")
        return cls(Kind(data["kind"]), resource, name or None, dict(data.get("details") or {}),
                   data.get("impact"))

    def change_lines(self) -> list[str]:
        """What it changes, a setting a line (``details["changes"]``: before -> after), or a
        new thing's settings (``details["settings"]``), secrets redacted (checkpoints.changes)."""
        lines = [f"{k}: {v}" for k, v in (self.details.get("changes") or {}).items()]
        return lines + [f"{k}: {v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
                        for k, v in (self.details.get("settings") or {}).items()]

    def describe(self, changes: bool = True) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.details.items())
                          if k not in CHANGE_KEYS)
        text = f"{self.kind} {self.target}" + (f" ({extra})" if extra else "")
        lines = self.change_lines() if changes else []
        return text + (": " + "; ".join(lines) if lines else "")


@dataclass(frozen=True)
class Plan:
    checkpoint: str
    actions: tuple[Action, ...] = ()
    notes: tuple = ()  # what was looked at; not part of the fingerprint
    # a plan read back from a record keeps the fingerprint it was recorded with (what was
    # approved); the sealed parts of its actions are not in the record to compute it again
    recorded_fingerprint: str | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def destructive(self) -> bool:
        return any(a.destructive for a in self.actions)

    @property
    def breaking(self) -> bool:
        return any(a.breaks for a in self.actions)

    @property
    def fingerprint(self) -> str:
        if self.recorded_fingerprint:
            return self.recorded_fingerprint
        canonical = json.dumps({"checkpoint": self.checkpoint,
                                "actions": [[str(a.kind), a.resource, a.name, a.details]
                                            + ([a.sealed] if a.sealed else [])
                                            for a in self.actions]},
                               sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def names(self, *kinds: Kind) -> list[str]:
        """The names the plan's actions (of these kinds, or all) act on."""
        return [a.name for a in self.actions if a.name and (not kinds or a.kind in kinds)]

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "fingerprint": self.fingerprint,
                "destructive": self.destructive, "breaking": self.breaking,
                "actions": [a.to_dict() for a in self.actions], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(data["checkpoint"], tuple(Action.from_dict(a) for a in data["actions"]),
                   tuple(data.get("notes") or ()), data.get("fingerprint"))


DEFAULT_POLICY = ApprovalPolicy()


@dataclass(frozen=True)
class Gate:
    """Whether a plan needs an approval before it is applied, and why. A breaking plan (it
    leaves an app without a place to run) needs its breaking acknowledged too."""
    required: bool
    destructive: bool
    reasons: tuple = ()
    breaking: bool = False
    policy: ApprovalPolicy = DEFAULT_POLICY

    @property
    def risk(self) -> str:
        if self.breaking:
            return "breaking"
        return "destructive" if self.destructive else ("approval" if self.required else "none")

    def to_dict(self) -> dict:
        return {"required": self.required, "destructive": self.destructive,
                "breaking": self.breaking, "risk": self.risk, "reasons": list(self.reasons),
                "min_approvals": self.policy.min_approvals}


NO_GATE = Gate(required=False, destructive=False)


def policy_for(config, gate_name: str) -> ApprovalPolicy:
    """``approvals.policy.<gate_name>``, else one approval by an approver."""
    return config.approvals.policy.get(gate_name, DEFAULT_POLICY)


def gate_for(checkpoint, plan: Plan, required_by_config: tuple = ()) -> Gate:
    """The checkpoint's own policy, plus destructive actions, plus ``approvals.required``."""
    if plan.empty:
        return NO_GATE
    reasons = list(checkpoint.approval_reasons(plan))
    destructive = [a.describe() for a in plan.actions if a.destructive]
    if destructive:
        reasons.append("destructive: " + "; ".join(destructive))
    reasons += breaking_reasons(plan)
    if checkpoint.name in required_by_config:
        reasons.append("approvals.required lists this checkpoint")
    return Gate(required=bool(reasons), destructive=bool(destructive), reasons=tuple(reasons),
                breaking=plan.breaking)


def breaking_reasons(plan: Plan) -> list[str]:
    lines = []
    for action in plan.actions:
        shortfalls = (action.impact or {}).get("shortfalls") or []
        lines += [f"BREAKING: {action.target}: {text}" for text in shortfalls]
        if action.breaks and not shortfalls:
            lines.append(f"BREAKING: {action.target} leaves {', '.join(action.breaks)} "
                         f"without a place to run")
    return lines

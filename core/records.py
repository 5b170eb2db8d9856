"""The records that cross layers, typed. The store returns them, the API's schemas
serialize them (by attribute), the CLI prints them."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.facts import Decision, Outcome, RunStatus


@dataclass(frozen=True)
class CheckpointResult:
    run_id: str
    checkpoint: str
    status: Outcome
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None  # seconds
    plan: dict | None = None
    fingerprint: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Run:
    id: str
    mode: str  # deploy | checkpoint | checkpoints | start_from | teardown | operation
    status: RunStatus
    requester: str
    source: str
    selection: tuple[str, ...]
    options: dict
    created_at: float
    updated_at: float
    error: str | None = None
    failed_checkpoint: str | None = None  # where it stopped (failed, rejected or awaiting)
    finished_at: float | None = None
    checkpoints: tuple[CheckpointResult, ...] = ()

    def result(self, checkpoint: str) -> CheckpointResult:
        return next(r for r in self.checkpoints if r.checkpoint == checkpoint)

    @property
    def remaining(self) -> list[str]:
        """The checkpoints still to run, in order."""
        return [r.checkpoint for r in self.checkpoints if not r.status.done]


@dataclass(frozen=True)
class ApprovalRequest:
    """A run waits at ``checkpoint`` for a decision on the plan ``fingerprint``."""
    id: str
    run_id: str
    checkpoint: str
    fingerprint: str
    plan: dict
    destructive: bool
    reasons: tuple[str, ...]
    requester: str
    created_at: float
    closed_at: float | None = None
    breaking: bool = False  # the plan leaves an app without a place to run


@dataclass(frozen=True)
class Approval:
    """One decision record (append-only: revoking is a new record naming the revoked one)."""
    id: str
    checkpoint: str
    plan_fingerprint: str
    decision: Decision
    approver: str
    source: str
    created_at: float
    run_id: str | None = None
    requester: str | None = None
    reason: str | None = None
    acknowledge_risks: bool = False
    expires_at: float | None = None
    revokes: str | None = None
    claimed_by: str | None = None  # a name the caller claimed (CLI --operator), beside approver
    acknowledge_breaking: bool = False


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    run_id: str | None
    pid: int | None
    host: str | None
    acquired_at: float
    expires_at: float


@dataclass(frozen=True)
class Event:
    """A step of a run (what the SSE stream and the CLI's progress show)."""
    id: int
    kind: str
    message: str
    created_at: float
    run_id: str | None = None
    checkpoint: str | None = None
    data: dict | None = None


@dataclass(frozen=True)
class AuditEvent:
    """Who did what to the cluster, hash-chained: ``hash`` covers every other field and the
    previous event's hash, so an altered or missing event is detectable."""
    seq: int
    created_at: float
    principal: str  # who acted: a token's principal, the OS user, or "auto"
    source: str  # cli | api | auto | file
    action: str  # e.g. run.start, approval.approve, node.remove, app.deploy
    target: str  # what it acted on: a run id, a checkpoint, a node, an app
    result: str  # ok | refused | failed | pending (with a reason in detail)
    prev_hash: str
    hash: str
    claimed_name: str | None = None
    client_address: str | None = None
    plan_fingerprint: str | None = None
    run_id: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NodeView:
    """A node as the inventory sees it: the platform app and its Ray node, merged."""
    node_type: str  # head | worker
    alive: bool
    node_id: str | None = None
    node_name: str | None = None
    node_ip: str | None = None
    platform_app_id: str | None = None
    platform_app_name: str | None = None
    platform_status: str | None = None
    resources: dict = field(default_factory=dict)
    resources_used: dict = field(default_factory=dict)
    deployed_at: float | None = None  # when its platform app was created (Unix time, s)


@dataclass(frozen=True)
class ApprovalPolicy:
    """How many approvals a gate needs, and from whom (``approvals.policy.<gate>``)."""
    min_approvals: int = 1
    distinct: bool = True  # each approval from another principal
    exclude_requester: bool = False  # the run's requester may not be one of them
    roles: tuple = ("approver",)  # every approver holds each of these roles

    def to_dict(self) -> dict:
        return {"min_approvals": self.min_approvals, "distinct": self.distinct,
                "exclude_requester": self.exclude_requester, "roles": list(self.roles)}


@dataclass(frozen=True)
class Delivery:
    """One notification sent (or being sent) to one target. ``target`` is the target's name:
    its URL and secret are never recorded."""
    id: str
    event: str
    target: str
    status: str  # pending | delivered | failed
    attempts: int
    created_at: float
    updated_at: float
    run_id: str | None = None
    checkpoint: str | None = None
    last_error: str | None = None
    payload: dict = field(default_factory=dict)

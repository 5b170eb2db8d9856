"""The approval rules, in one place for the orchestrator, the CLI and the API.

An approval counts only for the run that asked for it, the same checkpoint AND plan
fingerprint, unexpired, unrevoked, and (for a destructive gate) with ``acknowledge_risks``.
Binding it to the run keeps an old approval (say, of an earlier teardown whose plan looked
the same) from silently approving a new run. Records are append-only: revoking
is a new record naming the one it revokes.
"""
from __future__ import annotations

from dataclasses import dataclass

from checkpoints import audit
from checkpoints.access import Actor
from checkpoints.errors import AlreadyDecided, NoPendingApproval, PlanChanged, SelfApprovalForbidden
from checkpoints.plan import DEFAULT_POLICY, Gate, policy_for
from checkpoints.runs import transition
from core.errors import Conflict, DomainError, Invalid, NotFound
from core.facts import Decision, RunStatus
from core.records import Approval, ApprovalPolicy, ApprovalRequest
from store import Store


@dataclass(frozen=True)
class Verdict:
    state: str  # approved | rejected | missing
    record: Approval | None = None
    why: str = ""  # for "missing": why an existing record did not count
    approvals: tuple = ()  # the approvals that count so far (oldest first)
    needed: int = 1  # how many the gate's policy asks for

    @property
    def progress(self) -> str:
        """'1 of 2 approvals (alice)'."""
        names = ", ".join(r.approver for r in self.approvals)
        return (f"{len(self.approvals)} of {self.needed} approval{'s' if self.needed > 1 else ''}"
                + (f" ({names})" if names else ""))


def record_state(record: Approval, revoked: set[str], now: float) -> str:
    """approved | rejected | revoked | expired | revocation, for listing records."""
    if record.decision == Decision.REVOKED:
        return "revocation"
    if record.id in revoked:
        return "revoked"
    if record.decision == Decision.APPROVED and record.expires_at and record.expires_at <= now:
        return "expired"
    return str(record.decision)


def evaluate(store: Store, run_id: str, checkpoint: str, fingerprint: str, gate: Gate) -> Verdict:
    """The decision that holds now for this run, checkpoint and plan: one rejection ends it;
    it is approved once ``gate.policy.min_approvals`` approvals count (distinct principals,
    not the requester, as the policy says)."""
    now = store.clock.time()
    revoked = store.approvals.revoked_ids()
    policy = gate.policy
    why, counted = "", []
    for record in store.approvals.decisions(checkpoint=checkpoint):  # newest first
        state = record_state(record, revoked, now)
        if state in ("revocation", "revoked") or record.run_id != run_id:
            continue
        if record.plan_fingerprint != fingerprint:
            if state == "approved" and not why:
                why = (f"approval {record.id} was given for an earlier plan "
                       f"({record.plan_fingerprint}); the plan is now {fingerprint}")
            continue
        if state == "rejected":
            return Verdict("rejected", record)
        if state == "expired":
            why = why or f"approval {record.id} expired"
            continue
        if gate.destructive and not record.acknowledge_risks:
            why = why or f"approval {record.id} did not acknowledge the risks of a destructive gate"
            continue
        if gate.breaking and not record.acknowledge_breaking:
            why = why or f"approval {record.id} did not acknowledge that the plan breaks apps"
            continue
        if policy.exclude_requester and record.approver == record.requester:
            why = why or f"approval {record.id} is the requester's own (the policy excludes it)"
            continue
        if policy.distinct and any(r.approver == record.approver for r in counted):
            continue
        counted.append(record)
    counted.reverse()
    if len(counted) >= policy.min_approvals:
        return Verdict("approved", counted[-1], approvals=tuple(counted),
                       needed=policy.min_approvals)
    if counted and not why:
        why = (f"{len(counted)} of {policy.min_approvals} approvals so far "
               f"({', '.join(r.approver for r in counted)})")
    return Verdict("missing", None, why, approvals=tuple(counted), needed=policy.min_approvals)


def gate_of(request: ApprovalRequest, policy: ApprovalPolicy = DEFAULT_POLICY) -> Gate:
    """The gate a waiting request stands for, under the gate's approval policy."""
    return Gate(required=True, destructive=request.destructive, reasons=tuple(request.reasons),
                breaking=request.breaking, policy=policy)


def verdict_for(store: Store, request: ApprovalRequest,
                policy: ApprovalPolicy = DEFAULT_POLICY) -> Verdict:
    """The decision that holds now on the plan a request waits with."""
    return evaluate(store, request.run_id, request.checkpoint, request.fingerprint,
                    gate_of(request, policy))


def still_required(request: ApprovalRequest, verdict: Verdict,
                   policy: ApprovalPolicy = DEFAULT_POLICY) -> list[str]:
    """What the plan a request waits with still needs before it is approved, in words (the
    same rules ``_decide`` enforces); nothing once it is approved."""
    if verdict.state == "approved":
        return []
    required = []
    if verdict.approvals:
        more = verdict.needed - len(verdict.approvals)
        required.append(f"{more} more approval{'s' if more > 1 else ''} of plan "
                        f"{request.fingerprint} ({verdict.progress})"
                        + (" from other principals" if policy.distinct else ""))
    else:
        required.append("a decision on plan " + request.fingerprint
                        + (f" ({policy.min_approvals} approvals)"
                           if policy.min_approvals > 1 else ""))
    if request.destructive:
        required.append("acknowledge_risks: true (destructive gate)")
    if request.breaking:
        required.append("acknowledge_breaking: true (the plan breaks apps: see the plan's "
                        "impact)")
    if verdict.why and not verdict.approvals:
        required.append(verdict.why)
    if policy.exclude_requester:
        required.append(f"not from the requester ({request.requester})")
    return required


@dataclass(frozen=True)
class Ballot:
    """What a decider says, about the plan it was shown (the run and fingerprint)."""
    decision: str  # approve | reject
    run_id: str | None
    fingerprint: str | None
    reason: str | None = None
    acknowledge_risks: bool = False
    acknowledge_breaking: bool = False


@dataclass(frozen=True)
class GateRules:
    """How decisions at one gate are taken, read from the config once: its policy (how
    many approvals, from whom), how long an approval holds, whether the requester may
    approve its own destructive plan, and (``notifier``) where decisions are notified."""
    policy: ApprovalPolicy = DEFAULT_POLICY
    ttl_seconds: float = 24 * 3600
    forbid_self_approval: bool = False
    notifier: object = None  # checkpoints.notifications.Notifier

    @classmethod
    def of(cls, ctx, gate: str, identities_known: bool = True) -> GateRules:
        """The rules of ``gate`` in ``ctx``'s config, notified through ``ctx.notifier``.
        ``identities_known``: callers are told apart (a server without tokens knows
        everyone as one "anonymous": no requester to keep from approving)."""
        config = ctx.config
        return cls(policy_for(config, gate), config.approvals.ttl_seconds,
                   identities_known and config.approvals.forbid_self_approval, ctx.notifier)


def decide(store: Store, actor: Actor, checkpoint: str, ballot: Ballot,
           rules: GateRules = GateRules()) -> Approval:
    """Record ``actor``'s ``ballot`` on the plan awaiting approval at ``checkpoint``: the
    one writer of a decision, for every path (CLI, prompt, API, inbox, files, automatic).

    The ballot names the run and plan the decider was shown: the decision is recorded only
    when exactly that plan of that run still awaits approval there, else it is PlanChanged
    naming both (another run's request at the same gate closes the first, and a plan
    changes while it waits; neither may be decided on unseen). Deciding needs the approver
    role, on every path. A rejection ends the waiting run at once (it is final: nothing
    resumes a rejected run). Every attempt is an audit event, refused ones too. With
    ``rules.notifier``, the decision is notified (approval.rejected, or approval.granted once
    the gate's policy is met).
    """
    if ballot.decision not in ("approve", "reject"):
        raise Invalid("decision must be 'approve' or 'reject'", field="decision")
    action = f"approval.{ballot.decision}"
    try:
        for role in ("approver", *rules.policy.roles):  # approver on every path, + the policy's
            actor.require(role, f"{ballot.decision} {checkpoint}")
        # One write transaction from the checks to the insert: two servers (or a server and
        # the CLI) deciding at once cannot both pass the "already decided" check.
        with store.db.transaction():
            record = _decide(store, actor, checkpoint, ballot, rules)
            audit.record(store, actor, action, checkpoint, "ok", run_id=record.run_id,
                         plan_fingerprint=record.plan_fingerprint, reason=ballot.reason)
            if record.decision == Decision.REJECTED:
                end_rejected_run(store, record)
    except DomainError as e:
        audit.record(store, actor, action, checkpoint, "refused",
                     plan_fingerprint=ballot.fingerprint, run_id=ballot.run_id, reason=str(e))
        raise
    if rules.notifier is not None:
        _notify(rules.notifier, store, record, rules.policy)
    return record


def _notify(notifier, store: Store, record: Approval, policy: ApprovalPolicy) -> None:
    facts = {"plan_fingerprint": record.plan_fingerprint, "reason": record.reason,
             "requester": record.requester}
    if record.decision == Decision.REJECTED:
        notifier.emit("approval.rejected", run_id=record.run_id,
                      checkpoint=record.checkpoint, approver=record.approver, **facts)
        return
    request = store.approvals.open_request_for(record.checkpoint)
    if request is None or request.run_id != record.run_id:
        return
    verdict = verdict_for(store, request, policy)
    if verdict.state == "approved":
        notifier.emit("approval.granted", run_id=record.run_id, checkpoint=record.checkpoint,
                      approvers=[r.approver for r in verdict.approvals], **facts)


def _decide(store: Store, actor: Actor, checkpoint: str, ballot: Ballot,
            rules: GateRules) -> Approval:
    decision, run_id, fingerprint = ballot.decision, ballot.run_id, ballot.fingerprint
    policy = rules.policy
    request = store.approvals.open_request_for(checkpoint)
    if request is None:
        raise NoPendingApproval(f"no plan of {checkpoint} is awaiting approval "
                                f"(start a run that reaches it first)")
    if not run_id or not fingerprint:
        raise Invalid("a decision names the run and the plan fingerprint it was shown",
                      field="run_id" if not run_id else "plan_fingerprint")
    if (run_id, fingerprint) != (request.run_id, request.fingerprint):
        raise PlanChanged(f"you were shown plan {fingerprint} of run {run_id} at {checkpoint}, "
                          f"but the plan awaiting approval there is {request.fingerprint} of run "
                          f"{request.run_id}: nothing was recorded; review that plan and decide "
                          f"on it")
    current = verdict_for(store, request, policy)
    if current.state != "missing":
        raise AlreadyDecided(f"plan {request.fingerprint} of {checkpoint} was already "
                             f"{current.state} by {current.record.approver}")
    if decision == "approve" and policy.distinct and \
            actor.principal in {r.approver for r in current.approvals}:
        raise AlreadyDecided(f"{actor.principal} already approved plan {request.fingerprint} of "
                             f"{checkpoint} ({current.progress}): another approver is needed")
    if decision == "approve" and policy.exclude_requester and actor.principal == request.requester:
        raise SelfApprovalForbidden(f"{actor.principal} started this run and may not approve "
                                    f"{checkpoint} (approvals.policy.{checkpoint}.exclude_requester)")
    if decision == "approve" and request.destructive and not ballot.acknowledge_risks:
        raise Invalid(f"{checkpoint} is a destructive gate: approving it needs "
                      f"acknowledge_risks (CLI: --acknowledge-risks)", field="acknowledge_risks")
    if decision == "approve" and request.breaking and not ballot.acknowledge_breaking:
        raise Invalid(f"the plan of {checkpoint} BREAKS apps ({', '.join(_broken(request))}): "
                      f"approving it needs acknowledge_breaking as well (CLI: "
                      f"--acknowledge-breaking)", field="acknowledge_breaking")
    if (decision == "approve" and rules.forbid_self_approval and request.destructive
            and actor.principal == request.requester):
        raise SelfApprovalForbidden(f"{actor.principal} started this run and may not approve its "
                                    f"destructive gate {checkpoint} (approvals.forbid_self_approval)")
    return store.approvals.add_approval(
        checkpoint=checkpoint, plan_fingerprint=request.fingerprint,
        decision=Decision.APPROVED if decision == "approve" else Decision.REJECTED,
        approver=actor.principal, source=actor.source, run_id=request.run_id,
        requester=request.requester, reason=ballot.reason,
        acknowledge_risks=ballot.acknowledge_risks,
        ttl_seconds=rules.ttl_seconds if decision == "approve" else None,
        claimed_by=actor.claimed_name,
        acknowledge_breaking=decision == "approve" and ballot.acknowledge_breaking)


def _broken(request) -> list[str]:
    return sorted({app for a in request.plan.get("actions", [])
                   for app in (a.get("details") or {}).get("breaks", [])})


def rejection_message(record: Approval) -> str:
    return (f"{record.checkpoint} rejected by {record.approver}"
            + (f" ({record.claimed_by})" if record.claimed_by else "")
            + (f": {record.reason}" if record.reason else ""))


def end_rejected_run(store: Store, record: Approval) -> None:
    """A rejection ends the run that waits for it, whoever rejects and from wherever (the
    one place a run becomes rejected: its error says who, the name they claimed, and why)."""
    run = store.runs.get_run(record.run_id) if record.run_id else None
    store.approvals.close_approval_requests(record.run_id, record.checkpoint)
    if run is None or run.status not in (RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING):
        return
    transition(store, run.id, RunStatus.REJECTED, failed_checkpoint=record.checkpoint,
               error=rejection_message(record))
    store.events.add_event("run.rejected", rejection_message(record), run_id=run.id,
                    checkpoint=record.checkpoint, data={"approval_id": record.id})


def revoke(store: Store, actor: Actor, approval_id: str, reason: str | None = None) -> Approval:
    """Revoke an approval (a new record). A rejection cannot be revoked: it is final."""
    try:
        actor.require("approver", "revoke approvals")
        with store.db.transaction():  # the check and the insert together: one revocation
            record = store.approvals.get_approval(approval_id)
            if record is None or record.decision == Decision.REVOKED:
                raise NotFound(f"approval {approval_id} not found")
            if record.decision == Decision.REJECTED:
                raise Conflict(f"approval {approval_id} is a rejection, and a rejection is final "
                               f"for its run: start a new run instead")
            if approval_id in store.approvals.revoked_ids():
                raise AlreadyDecided(f"approval {approval_id} is already revoked")
            revocation = store.approvals.add_approval(
                checkpoint=record.checkpoint, plan_fingerprint=record.plan_fingerprint,
                decision=Decision.REVOKED, approver=actor.principal, source=actor.source,
                run_id=record.run_id, requester=record.requester, reason=reason,
                revokes=approval_id, claimed_by=actor.claimed_name)
            audit.record(store, actor, "approval.revoke", approval_id, "ok",
                         plan_fingerprint=record.plan_fingerprint, run_id=record.run_id,
                         reason=reason)
            return revocation
    except DomainError as e:
        audit.record(store, actor, "approval.revoke", approval_id, "refused", reason=str(e))
        raise

"""The orchestrator: one loop over the selected checkpoints with named phases
(plan -> skip if empty -> gate -> apply -> verify -> record), one run at a time per cluster.

Collaborators are injected: the context (config, store, platform, cluster, reporter, clock)
and a gatekeeper that turns "this plan needs an approval" into a decision (a CLI prompt,
--auto-approve, waiting for an approval given elsewhere). The orchestrator never prints.
"""
from __future__ import annotations

import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from checkpoints import (
    BY_NAME,
    ORDER,
    TEARDOWN,
    approvals,
    audit,
    file_approvals,
    notifications,
    operations,
    preview,
)
from checkpoints.access import Actor
from checkpoints.base import Checkpoint, Context, RunCancelled
from checkpoints.errors import CheckpointFailed, RunRejected
from checkpoints.plan import Gate, Plan
from checkpoints.runs import transition
from cluster.health import serving
from core import crashpoints
from core.errors import Conflict, DomainError, Invalid, NotFound
from core.facts import RESUMABLE, RUN_STATUS_FOR, Outcome, RunStatus
from core.records import ApprovalRequest, Run
from core.timing import TimedOut, poll_until

LEASE_TTL = 30.0
HEARTBEAT = 5.0


@dataclass
class GateRequest:
    ctx: Context
    run: Run
    checkpoint: Checkpoint
    plan: Plan
    gate: Gate
    request: ApprovalRequest
    why_not: str  # why an existing approval did not count ("" if there was none)


# -> approved | rejected | pending | timeout
Gatekeeper = Callable[[GateRequest], str]


def describe_state(plan: Plan) -> str:
    """What a plan says about the live system, in one line."""
    if plan.empty:
        return "; ".join(plan.notes) or "nothing to do"
    return "; ".join(a.describe() for a in plan.actions)


def selection_for(mode: str, name: str | None = None) -> list[str]:
    if mode == "deploy":
        return list(ORDER)
    if mode == "teardown":
        return [TEARDOWN.name]
    if name not in ORDER:
        raise Invalid(f"unknown checkpoint {name!r}; choose one of {', '.join(ORDER)}",
                      field="checkpoint")
    return [name] if mode == "checkpoint" else list(ORDER[ORDER.index(name):])


def wait_for_decision(ctx: Context, name: str, plan: Plan, gate: Gate, timeout: float,
                      on_tick: Callable[[float], None] = lambda elapsed: None,
                      poll: float = 0.5) -> approvals.Verdict | None:
    """Poll the store until a decision on this plan holds; None after ``timeout``."""
    start = ctx.clock.monotonic()
    lead = ctx.config.notifications.expiring_lead_seconds
    warned = [False]

    def decided():
        file_approvals.take(ctx, name, gate)
        verdict = approvals.evaluate(ctx.store, ctx.run_id, name, plan.fingerprint, gate)
        return verdict if verdict.state != "missing" else None

    def tick(_message):
        if ctx.cancelled():
            raise RunCancelled()
        elapsed = ctx.clock.monotonic() - start
        if not warned[0] and elapsed >= timeout - lead:  # tell approvers before it fails closed
            warned[0] = True
            ctx.notifier.emit("approval.expiring", run_id=ctx.run_id, checkpoint=name,
                              seconds_left=round(max(0.0, timeout - elapsed)),
                              **notifications.approval_facts(ctx.config, name, plan, gate, None))
        on_tick(elapsed)
    try:
        return poll_until(decided, timeout, f"a decision on {name}", on_wait=tick,
                          clock=ctx.clock, interval=poll)
    except TimedOut:
        return None


class Orchestrator:
    def __init__(self, ctx: Context, gatekeeper: Gatekeeper,
                 checkpoints: dict[str, Checkpoint] = BY_NAME):
        self.ctx = ctx
        self.checkpoints = checkpoints
        self.store = ctx.store
        self.gatekeeper = gatekeeper
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._resumed = False  # a resumed run reports what it found at its first checkpoint
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- lease ----------------------------------------------------------------------------------
    def acquire(self, run_id: str | None = None) -> None:
        """Take the cluster lease or raise LeaseHeld. Runs left 'running' by a crashed holder
        become 'interrupted' (only the lease holder may run)."""
        self.store.leases.acquire_lease(self.holder, run_id, LEASE_TTL)
        for run in self.store.runs.list_runs(statuses=[RunStatus.RUNNING]):
            transition(self.store, run.id, RunStatus.INTERRUPTED,
                       error="the process running it stopped (crash or kill)")
            self.store.events.add_event("run.interrupted", f"run {run.id} was interrupted", run_id=run.id)
        self._stop_heartbeat.clear()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True, name="lease-heartbeat")
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(HEARTBEAT):
            self.store.leases.renew_lease(self.holder, LEASE_TTL)

    def release(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=2)
        self.store.leases.release_lease(self.holder)

    # -- runs -------------------------------------------------------------------------------------
    def create_run(self, mode: str, selection: list[str], actor: Actor,
                   options: dict | None = None, audit_action: str | None = "run.start") -> Run:
        """Record a new run by ``actor`` (who needs the operator role), with its audit event
        (``audit_action`` None: the caller writes the one event of its operation)."""
        try:
            actor.require("operator", f"start a {mode} run")
        except DomainError as e:
            if audit_action:
                audit.record(self.store, actor, audit_action, mode, "refused", reason=str(e))
            raise
        with self.store.db.transaction():
            run = self.store.runs.create_run(mode, selection, actor.principal, actor.source, options)
            if audit_action:
                audit.record(self.store, actor, audit_action, run.id, "ok", run_id=run.id,
                             mode=mode, selection=selection)
        self.store.leases.renew_lease(self.holder, LEASE_TTL, run_id=run.id)
        self.store.events.add_event("run.started", f"{mode} run {run.id} started by {actor.principal}",
                             run_id=run.id, data={"selection": selection, "mode": mode})
        return run

    def resumable_run(self, run_id: str | None = None) -> Run:
        if run_id:
            run = self.store.runs.get_run(run_id)
            if run is None:
                raise NotFound(f"run {run_id} not found")
        else:
            run = self.store.runs.latest_run()
            if run is None:
                raise NotFound("there is no run to resume: start one with --deploy")
        if run.status == RunStatus.REJECTED:  # one kind from every path: CLI 4, API 409
            raise RunRejected(f"run {run.id} was rejected ({run.error}); a rejection is final: "
                              f"start a new one with --deploy")
        if run.status not in RESUMABLE:
            raise Invalid(f"run {run.id} is {run.status}; only runs that are "
                          f"{', '.join(sorted(RESUMABLE))} can be resumed", field="resume")
        return run

    def resume(self, run: Run, actor: Actor) -> Run:
        try:
            actor.require("operator", "resume runs")
            with self.store.db.transaction():
                transition(self.store, run.id, RunStatus.RUNNING, error=None,
                           failed_checkpoint=None)
                audit.record(self.store, actor, "run.resume", run.id, "ok", run_id=run.id)
        except DomainError as e:
            audit.record(self.store, actor, "run.resume", run.id, "refused", run_id=run.id,
                         reason=str(e))
            raise
        self.store.leases.renew_lease(self.holder, LEASE_TTL, run_id=run.id)
        self.store.events.add_event("run.resumed", f"run {run.id} resumed", run_id=run.id)
        self._resumed = True
        return self.store.runs.get_run(run.id)

    def execute(self, run: Run) -> Run:
        """Run the run's remaining checkpoints; returns the run as recorded at the end."""
        run_id = self.ctx.run_id = run.id
        self.ctx.cancelled = lambda: self.store.runs.get_run(run_id).status == RunStatus.CANCELLED
        total = len(run.selection)
        expected = run.options.get("expected_fingerprints") or {}
        remaining = run.remaining
        for at, name in enumerate(remaining):
            index = run.selection.index(name) + 1
            outcome = self._run_checkpoint(run_id, self._checkpoint(run, name), index, total,
                                           expected.get(name))
            if not outcome.done:
                return self._finish(run_id, RUN_STATUS_FOR[outcome], name)
            for later in remaining[at + 1:]:  # what they will wait for, started now
                try:
                    self._checkpoint(run, later).ahead(self.ctx)
                except DomainError:
                    pass
        if run.mode not in ("operation", "teardown"):
            preview.remember_success(self.ctx, run_id)
        return self._finish(run_id, RunStatus.SUCCEEDED, None)

    def _checkpoint(self, run: Run, name: str) -> Checkpoint:
        if name not in self.checkpoints and run.mode == "operation":  # resumed: rebuild it
            self.checkpoints = {**self.checkpoints, name: operations.from_options(run.options)}
        return self.checkpoints[name]

    def _finish(self, run_id: str, status: RunStatus, checkpoint: str | None) -> Run:
        run = self.store.runs.get_run(run_id)
        stopped_at = checkpoint if status != RunStatus.SUCCEEDED else None
        if run.status == RunStatus.CANCELLED:
            pass
        elif status != run.status:
            try:
                transition(self.store, run_id, status, failed_checkpoint=stopped_at)
            except Conflict:  # cancelled in the moment since it was read: the cancel stands
                if self.store.runs.get_run(run_id).status != RunStatus.CANCELLED:
                    raise
        else:  # already awaiting approval since the gate
            self.store.runs.update_run(run_id, failed_checkpoint=stopped_at)
        run = self.store.runs.get_run(run_id)
        if run.status != RunStatus.AWAITING_APPROVAL:  # nobody waits at a gate of a run that ended
            self.store.approvals.close_approval_requests(run_id)
        self.store.events.add_event("run.finished", f"run {run_id} {run.status}", run_id=run_id,
                             checkpoint=checkpoint, data={"status": str(run.status),
                                                          "error": run.error})
        if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            self.ctx.notifier.emit(f"run.{run.status}", run_id=run_id, checkpoint=checkpoint,
                                   mode=run.mode, error=run.error, requester=run.requester)
        return run

    # -- one checkpoint: plan -> skip? -> gate -> apply -> verify -> record ---------------------------
    def _run_checkpoint(self, run_id: str, checkpoint: Checkpoint, index: int, total: int,
                        expected: str | None = None) -> Outcome:
        """``expected``: the fingerprint a saved plan (--plan-file) allows here."""
        ctx, name = self.ctx, checkpoint.name
        started = ctx.clock.monotonic()
        self.store.runs.update_result(run_id, name, status=Outcome.RUNNING,
                                 started_at=ctx.clock.time(), error=None)
        self._event("checkpoint.started", name, f"{name} started", {"index": index, "total": total})
        ctx.reporter.checkpoint_started(name, index, total)
        crashpoints.enter(name)
        plan = None
        try:
            while True:
                with ctx.cluster.inventory.one_listing():  # plan: one app listing for it
                    plan = checkpoint.plan(ctx)
                crashpoints.reached("plan")
                if self._resumed:  # say what the live system was found to be
                    self._resumed = False
                    ctx.reporter.message(f"found: {describe_state(plan)}")
                if expected is not None and plan.fingerprint != expected:
                    raise CheckpointFailed(
                        f"the plan changed since it was saved (plan file: {expected}, now "
                        f"{plan.fingerprint}): nothing was applied; review it with "
                        f"`deploy_master.py plan` and save it again")
                if plan.empty:  # skip
                    crashpoints.reached("record")
                    return self._record(run_id, name, Outcome.SKIPPED, started, plan)
                gate = checkpoint.gate(plan, ctx.config)
                if gate.required:  # gate
                    decision = self._gate(run_id, checkpoint, plan, gate)
                    if decision != Outcome.SUCCEEDED:
                        return self._record(run_id, name, decision, started, plan)
                    with ctx.cluster.inventory.one_listing():
                        again = checkpoint.plan(ctx)
                    if again.fingerprint != plan.fingerprint:
                        ctx.reporter.message(f"{name}: the plan changed while waiting; "
                                             f"it needs a new approval")
                        continue
                    crashpoints.reached("gate")
                if checkpoint.guards_serving:  # what serves now must still serve after
                    ctx.notes["serving_before"] = serving(ctx.cluster)
                crashpoints.reached("apply-start")
                checkpoint.apply(ctx, plan)  # apply
                crashpoints.reached("verify")
                problems = checkpoint.verify(ctx)  # verify
                if problems:
                    raise CheckpointFailed("verify: " + "; ".join(problems))
                crashpoints.reached("record")
                return self._record(run_id, name, Outcome.SUCCEEDED, started, plan)  # record
        except RunCancelled:
            return self._record(run_id, name, Outcome.CANCELLED, started, plan,
                                "cancelled by request")
        except DomainError as e:
            return self._record(run_id, name, Outcome.FAILED, started, plan, str(e))
        except Exception as e:  # a bug: keep the trace in the store, not on the user's screen
            self.store.events.add_event("checkpoint.crash", traceback.format_exc(), run_id=run_id,
                                 checkpoint=name)
            return self._record(run_id, name, Outcome.FAILED, started, plan,
                                f"{type(e).__name__}: {e}")

    def _gate(self, run_id: str, checkpoint: Checkpoint, plan: Plan, gate: Gate) -> Outcome:
        """SUCCEEDED when the plan may be applied, else how the checkpoint stops."""
        ctx = self.ctx
        verdict = approvals.evaluate(self.store, run_id, checkpoint.name, plan.fingerprint, gate)
        if verdict.state == "approved":
            self.store.approvals.close_approval_requests(run_id, checkpoint.name)
            self._event("approval.used", checkpoint.name,
                        f"{checkpoint.name}: approval {verdict.record.id} by "
                        f"{verdict.record.approver} applies", {"approval_id": verdict.record.id})
            return Outcome.SUCCEEDED
        run = self.store.runs.get_run(run_id)
        if verdict.state == "rejected":  # decided while this run was away (then resumed)
            approvals.end_rejected_run(self.store, verdict.record)
            return Outcome.REJECTED
        request = self.store.approvals.open_approval_request(
            run_id, checkpoint.name, plan.fingerprint, plan.to_dict(), gate.destructive,
            list(gate.reasons), run.requester, breaking=gate.breaking)
        self.store.runs.update_result(run_id, checkpoint.name, status=Outcome.AWAITING_APPROVAL,
                                 plan=plan.to_dict(), fingerprint=plan.fingerprint)
        transition(self.store, run_id, RunStatus.AWAITING_APPROVAL)
        self._event("approval.required", checkpoint.name,
                    f"{checkpoint.name} awaits {'destructive ' if gate.destructive else ''}approval "
                    f"of plan {plan.fingerprint}",
                    {"plan": plan.to_dict(), "gate": gate.to_dict(), "request_id": request.id,
                     "why_not": verdict.why})
        ctx.notifier.emit("approval.required", run_id=run_id, checkpoint=checkpoint.name,
                          **notifications.approval_facts(ctx.config, checkpoint.name, plan, gate,
                                                         run.requester, request.id))
        if file_approvals.take(ctx, checkpoint.name, gate) and approvals.evaluate(
                self.store, run_id, checkpoint.name, plan.fingerprint, gate).state == "approved":
            decision = "approved"
        else:
            decision = self.gatekeeper(GateRequest(ctx, run, checkpoint, plan, gate, request,
                                                   verdict.why))
        if decision == "approved":
            self.store.approvals.close_approval_requests(run_id, checkpoint.name)
            transition(self.store, run_id, RunStatus.RUNNING)
            return Outcome.SUCCEEDED
        if decision == "rejected":  # approvals.decide ended the run as rejected, said by whom
            return Outcome.REJECTED
        if decision == "timeout":
            raise CheckpointFailed(
                f"no decision on {checkpoint.name} within approvals.wait_timeout_seconds "
                f"({ctx.config.approvals.wait_timeout_seconds:.0f}s): failing closed")
        return Outcome.AWAITING_APPROVAL

    def _record(self, run_id: str, name: str, outcome: Outcome, started: float,
                plan: Plan | None, error: str | None = None) -> Outcome:
        seconds = self.ctx.clock.monotonic() - started
        self.store.runs.update_result(run_id, name, status=outcome, finished_at=self.ctx.clock.time(),
                                 duration=round(seconds, 3),
                                 plan=plan.to_dict() if plan else None,
                                 fingerprint=plan.fingerprint if plan else None, error=error)
        if error and outcome == Outcome.FAILED:
            self.store.runs.update_run(run_id, error=f"{name} failed: {error}")
        detail = error or ""
        if outcome == Outcome.REJECTED:
            detail = self.store.runs.get_run(run_id).error or ""
        self._event(f"checkpoint.{outcome}", name, f"{name} {outcome} in {seconds:.1f}s"
                    + (f": {detail}" if detail else ""),
                    {"seconds": round(seconds, 3), "detail": detail})
        self.ctx.reporter.checkpoint_finished(name, outcome, seconds, detail)
        return outcome

    def _event(self, kind: str, checkpoint: str, message: str, data: dict | None = None) -> None:
        self.store.events.add_event(kind, message, run_id=self.ctx.run_id, checkpoint=checkpoint, data=data)

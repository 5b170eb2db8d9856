"""Runs started by a server: the lease is taken (or refused) before answering, then the run
executes on a thread. At a gate it waits for an approval recorded by anyone (the API, the
CLI's ``approve``), failing closed after ``approvals.wait_timeout_seconds``.

A run may carry the desired state a client sent (cluster/config/desired.py): it acts with
the server's config with those sections replaced, and keeps them in its options, so a resume
acts with the same. A client that starts the same desired state again while its run is
still going attaches to that run instead (a re-run of a CI workflow). A control plane that
(re)starts continues the run it was executing (``recover``).

Operations (node and app changes) run the same way; one that needs no approval runs in the
caller's thread, so the caller gets its result as it did before operations were gated."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from checkpoints import approvals, audit
from checkpoints.access import Actor
from checkpoints.base import Context
from checkpoints.operations import Operation
from checkpoints.orchestrator import GateRequest, Orchestrator, selection_for, wait_for_decision
from checkpoints.plan import Gate, Plan
from checkpoints.runs import transition
from cluster.config.desired import state_digest
from core.facts import RunStatus
from core.records import Run
from core.timing import poll_until

GATE_OPENS = 30.0  # seconds a gated operation's run may take to plan and open its gate


@dataclass(frozen=True)
class ApproveAs:
    """The caller who starts a run approves its gate too, as itself."""
    actor: Actor
    reason: str | None = None
    acknowledge_risks: bool = False
    acknowledge_breaking: bool = False
    identities_known: bool = True  # callers told apart (tokens), so self-approval can be seen


def gatekeeper_for(approve_as: ApproveAs | None):
    """Wait for a decision recorded elsewhere, or (``approve_as``) decide first."""
    def decide_or_wait(req: GateRequest) -> str:
        if approve_as and (approve_as.acknowledge_risks or not req.gate.destructive) and (
                approve_as.acknowledge_breaking or not req.gate.breaking):
            name = req.checkpoint.name
            approvals.decide(req.ctx.store, approve_as.actor, name, approvals.Ballot(
                "approve", req.run.id, req.plan.fingerprint, approve_as.reason,
                approve_as.acknowledge_risks, approve_as.acknowledge_breaking),
                approvals.GateRules.of(req.ctx, name, approve_as.identities_known))
            verdict = approvals.evaluate(req.ctx.store, req.ctx.run_id, req.checkpoint.name,
                                         req.plan.fingerprint, req.gate)
            if verdict.state != "missing":  # else the policy wants more approvers: wait
                return verdict.state
        verdict = wait_for_decision(req.ctx, req.checkpoint.name, req.plan, req.gate,
                                    req.ctx.config.approvals.wait_timeout_seconds)
        return "timeout" if verdict is None else verdict.state
    return decide_or_wait


@dataclass(frozen=True)
class OperationStarted:
    run: Run
    plan: Plan
    gate: Gate  # required: the run waits for an approval (it continues on its own after one)
    result: dict  # what the operation produced (when it ran at once)


ACTIVE = (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
# who continues a run a control plane was executing when it died
RECOVERY = Actor(principal="control-plane", source="api", claimed_name="recovery after a restart")


@dataclass(frozen=True)
class Started:
    run: Run
    attached: bool = False  # an earlier run of the same desired state, still going


class RunLauncher:
    def __init__(self, context_factory, on_finished=lambda run_id: None):
        """``context_factory(force: bool, desired: dict | None) -> Context``: a fresh context
        per run (with the desired state a client sent, if any); ``on_finished(run_id)``
        after a background run ends (e.g. to drop cached answers)."""
        self.context_factory = context_factory
        self.on_finished = on_finished
        self.threads: dict[str, threading.Thread] = {}

    def start(self, actor: Actor, *, mode: str = "deploy", checkpoint: str | None = None,
              selection: list[str] | None = None, resume: bool = False, force: bool = False,
              run_id: str | None = None, approve_as: ApproveAs | None = None,
              desired: dict | None = None, attach: bool = False) -> Started:
        """Take the lease (LeaseHeld if another run has it), record the run, start it. With
        ``attach``, a run of the same desired state and selection that is still going is
        returned instead (``attached``)."""
        if resume:  # the run acts with the desired state it was started with
            store = self.context_factory(force, None).store
            earlier = store.runs.get_run(run_id) if run_id else store.runs.latest_run()
            desired = (earlier.options.get("desired") if earlier else None) or desired
        ctx: Context = self.context_factory(force, desired)
        options = {"force": force}
        if desired is not None:
            options.update(desired=desired, desired_digest=state_digest(ctx.config))
        selection = [] if resume else selection or selection_for(mode, checkpoint)
        if attach and not resume:
            for run in ctx.store.runs.list_runs(limit=5, statuses=ACTIVE):
                if (run.options.get("desired_digest") == options.get("desired_digest")
                        and list(run.selection) == selection and run.mode == mode):
                    return Started(run, attached=True)
        orchestrator = Orchestrator(ctx, gatekeeper_for(approve_as))
        orchestrator.acquire()
        try:
            if resume:
                run = orchestrator.resume(orchestrator.resumable_run(run_id), actor)
            else:
                run = orchestrator.create_run(mode, selection, actor, options)
        except BaseException:
            orchestrator.release()
            raise
        self._in_background(orchestrator, run)
        return Started(run)

    def recover(self) -> Run | None:
        """At a control plane's start: it owns the store, so every lease in it was held by
        a process that is gone; the latest run, if it was going (or waiting at a gate), is
        continued. The plans read the live state, so nothing is done twice."""
        store = self.context_factory(False, None).store
        latest = store.runs.latest_run()
        store.leases.clear_leases()
        if latest is None or latest.status not in ACTIVE:
            return None
        if latest.status == RunStatus.RUNNING:  # its executor died: interrupted, then resumed
            transition(store, latest.id, RunStatus.INTERRUPTED,
                       error="the control plane running it stopped (crash or restart)")
            store.events.add_event("run.interrupted", f"run {latest.id} was interrupted", run_id=latest.id)
        return self.start(RECOVERY, resume=True, run_id=latest.id).run

    def run_operation(self, actor: Actor, op: Operation) -> OperationStarted:
        """Check, record and run ``op``: at once when it needs no approval (the caller waits),
        else in the background, waiting at its gate. One audit event either way."""
        ctx: Context = self.context_factory(False, None)
        try:
            actor.require("operator", f"{op.action} {op.target}")
            op.precheck(ctx)
        except Exception as e:
            audit.record(ctx.store, actor, op.action, op.target, "refused", reason=str(e))
            raise
        orchestrator = Orchestrator(ctx, gatekeeper_for(None), {op.name: op})
        orchestrator.acquire()
        try:
            run = orchestrator.create_run("operation", [op.name], actor, op.options(),
                                          audit_action=None)
            plan = op.plan(ctx)
            gate = op.gate(plan, ctx.config)
        except BaseException:
            orchestrator.release()
            raise
        if gate.required:
            audit.record(ctx.store, actor, op.action, op.target, "pending", run_id=run.id,
                         plan_fingerprint=plan.fingerprint, reasons=list(gate.reasons))
            self._in_background(orchestrator, run)
            # answer once the gate is open, so an approval sent right after the answer counts
            run = poll_until(lambda: (r := ctx.store.runs.get_run(run.id)).status
                             != RunStatus.RUNNING and r, GATE_OPENS, f"run {run.id} to reach its gate",
                             interval=0.02)
            return OperationStarted(run, plan, gate, {})
        try:
            run = orchestrator.execute(run)
        finally:
            orchestrator.release()
        ok = run.status == RunStatus.SUCCEEDED
        audit.record(ctx.store, actor, op.action, op.target, "ok" if ok else "failed",
                     run_id=run.id, plan_fingerprint=plan.fingerprint, error=run.error)
        return OperationStarted(run, plan, gate, op.result)

    def _in_background(self, orchestrator: Orchestrator, run: Run) -> None:
        thread = threading.Thread(target=self._execute, args=(orchestrator, run), daemon=True,
                                  name=f"run-{run.id}")
        self.threads[run.id] = thread
        thread.start()

    def _execute(self, orchestrator: Orchestrator, run: Run) -> None:
        try:
            orchestrator.execute(run)
        finally:
            orchestrator.release()
            self.on_finished(run.id)

    def join(self, run_id: str, timeout: float | None = None) -> None:
        thread = self.threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

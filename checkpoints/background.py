"""Runs started by a server: the lease is taken (or refused) before answering, then the run
executes on a thread. At a gate it waits for an approval recorded by anyone (the API, the
CLI's ``approve``), failing closed after ``approvals.wait_timeout_seconds``."""
from __future__ import annotations

import threading

from checkpoints import approvals
from checkpoints.base import Context
from checkpoints.orchestrator import GateRequest, Orchestrator, selection_for, wait_for_decision
from core.records import Run


def gatekeeper_for(approve_as: dict | None):
    """Wait for a decision recorded elsewhere; with ``approve_as`` ({approver, reason,
    acknowledge_risks}) the caller who started the run approves it first, as itself."""
    def decide_or_wait(req: GateRequest) -> str:
        if approve_as and (approve_as.get("acknowledge_risks") or not req.gate.destructive):
            approvals.decide(req.ctx.store, checkpoint=req.checkpoint.name, decision="approve",
                             approver=approve_as["approver"], source="api",
                             ttl_seconds=req.ctx.config.approvals.ttl_seconds,
                             reason=approve_as.get("reason"),
                             acknowledge_risks=bool(approve_as.get("acknowledge_risks")),
                             forbid_self_approval=approve_as.get("forbid_self_approval", False))
            return "approved"
        verdict = wait_for_decision(req.ctx, req.checkpoint.name, req.plan, req.gate,
                                    req.ctx.config.approvals.wait_timeout_seconds)
        return "timeout" if verdict is None else verdict.state
    return decide_or_wait


class RunLauncher:
    def __init__(self, context_factory):
        """``context_factory(force: bool) -> Context``: a fresh context per run."""
        self.context_factory = context_factory
        self.threads: dict[str, threading.Thread] = {}

    def start(self, *, requester: str, source: str, mode: str = "deploy",
              checkpoint: str | None = None, selection: list[str] | None = None,
              resume: bool = False, force: bool = False, run_id: str | None = None,
              approve_as: dict | None = None) -> Run:
        """Take the lease (LeaseHeld if another run has it), record the run, start it."""
        ctx: Context = self.context_factory(force)
        orchestrator = Orchestrator(ctx, gatekeeper_for(approve_as))
        orchestrator.acquire()
        try:
            if resume:
                run = orchestrator.resume(orchestrator.resumable_run(run_id))
            else:
                run = orchestrator.create_run(mode, selection or selection_for(mode, checkpoint),
                                              requester, source, {"force": force})
        except BaseException:
            orchestrator.release()
            raise
        thread = threading.Thread(target=self._execute, args=(orchestrator, run), daemon=True,
                                  name=f"run-{run.id}")
        self.threads[run.id] = thread
        thread.start()
        return run

    @staticmethod
    def _execute(orchestrator: Orchestrator, run: Run) -> None:
        try:
            orchestrator.execute(run)
        finally:
            orchestrator.release()

    def join(self, run_id: str, timeout: float | None = None) -> None:
        thread = self.threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

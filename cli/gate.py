"""What the CLI does at a gate: --auto-approve, an interactive prompt (on a terminal),
waiting for an approval given elsewhere (``approve`` or the API), or, with --no-wait,
stopping at once (exit 3) so a pipeline can approve and --resume later."""
from __future__ import annotations

import shlex
import sys
import time

from checkpoints import approvals
from checkpoints.access import Actor
from checkpoints.orchestrator import GateRequest, wait_for_decision
from cli.output import STATUS_EVERY, say
from core.text import printable


class CliGatekeeper:
    def __init__(self, args, actor: Actor):
        self.args = args
        self.actor = actor

    def _decide(self, req: GateRequest, actor: Actor, approve: bool, reason: str) -> None:
        config = req.ctx.config
        approvals.decide(req.ctx.store, actor, checkpoint=req.checkpoint.name,
                         decision="approve" if approve else "reject",
                         ttl_seconds=config.approvals.ttl_seconds, reason=reason,
                         acknowledge_risks=approve and req.gate.destructive,
                         forbid_self_approval=config.approvals.forbid_self_approval)

    def __call__(self, req: GateRequest) -> str:
        ctx, name, gate = req.ctx, req.checkpoint.name, req.gate
        if self.args.auto_approve:
            self._decide(req, self.actor.as_source("auto"), True, "--auto-approve")
            say(f"    auto-approved {name} (plan {req.plan.fingerprint})")
            return "approved"
        show_plan(req.checkpoint.name, req.plan, gate, req.why_not)
        command = approve_command(self.args, name, gate.destructive)
        if self.args.no_wait:
            say(f"    approve with:  {command}\n    then resume:   {resume_command(self.args)}")
            return "pending"
        if sys.stdin.isatty():
            return self._prompt(req)
        say(f"    waiting for an approval; give it with:\n      {command}\n"
            f"    or POST /api/v1/approvals/{name}")
        started = time.monotonic()
        next_status = [STATUS_EVERY]

        def tick(elapsed):
            if elapsed >= next_status[0]:
                say(f"    ... still awaiting approval of {name} ({elapsed:.0f}s); {command}")
                next_status[0] += STATUS_EVERY
        verdict = wait_for_decision(ctx, name, req.plan, gate,
                                    ctx.config.approvals.wait_timeout_seconds, tick)
        if verdict is None:
            return "timeout"
        say(f"    {verdict.state} by {printable(verdict.record.approver)} after "
            f"{time.monotonic() - started:.0f}s")
        return verdict.state

    def _prompt(self, req: GateRequest) -> str:
        name = req.checkpoint.name
        try:
            if req.gate.destructive:
                answer = input(f"    Type the checkpoint name ({name}) to approve, "
                               f"or press Enter to reject: ")
                approved = answer.strip() == name
            else:
                answer = input(f"    Approve {name}? [y/N]: ")
                approved = answer.strip().lower() in ("y", "yes")
            reason = input("    Reason (optional): ").strip() or None
        except (EOFError, KeyboardInterrupt):
            say("\n    no answer: the run stays awaiting approval")
            return "pending"
        self._decide(req, self.actor, approved,
                     reason or f"{'approved' if approved else 'declined'} at the prompt")
        return "approved" if approved else "rejected"


def show_plan(name: str, plan, gate, why_not: str = "") -> None:
    say(f"    {name} needs {'DESTRUCTIVE ' if gate.destructive else ''}approval"
        f" (plan {plan.fingerprint}, risk: {gate.risk})")
    for action in plan.actions:
        say(f"      - {printable(action.describe())}"
            f"{'   [destructive]' if action.destructive else ''}")
    for reason in gate.reasons:
        say(f"      why: {printable(reason)}")
    if why_not:
        say(f"      note: {printable(why_not)}")


def _base_command(args) -> list[str]:
    parts = ["python", "deploy_master.py"]
    if args.config:
        parts += ["--config", args.config]
    if args.state_dir:
        parts += ["--state-dir", args.state_dir]
    return parts


def approve_command(args, name: str, destructive: bool) -> str:
    parts = _base_command(args) + ["approve", name] + (["--acknowledge-risks"] if destructive else [])
    return " ".join(shlex.quote(p) for p in parts)


def resume_command(args) -> str:
    return " ".join(shlex.quote(p) for p in _base_command(args) + ["--resume"])

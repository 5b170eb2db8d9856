"""What the CLI does at a gate: --auto-approve, an interactive prompt (on a terminal),
waiting for an approval given elsewhere (``approve`` or the API), or, with --no-wait,
stopping at once (exit 3) so a pipeline can approve and --resume later."""
from __future__ import annotations

import shlex
import sys
import time

from checkpoints import approvals, file_approvals
from checkpoints.access import Actor
from checkpoints.orchestrator import GateRequest, wait_for_decision
from cli.output import STATUS_EVERY, say
from core import commands
from core.text import printable


class CliGatekeeper:
    def __init__(self, args, actor: Actor):
        self.args = args
        self.actor = actor

    def _decide(self, req: GateRequest, actor: Actor, approve: bool, reason: str) -> None:
        name = req.checkpoint.name
        approvals.decide(req.ctx.store, actor, name, approvals.Ballot(
            "approve" if approve else "reject", req.run.id, req.plan.fingerprint, reason,
            acknowledge_risks=approve and req.gate.destructive,
            acknowledge_breaking=approve and req.gate.breaking),
            approvals.GateRules.of(req.ctx, name))

    def __call__(self, req: GateRequest) -> str:
        name, gate = req.checkpoint.name, req.gate
        breaking_ok = getattr(self.args, "acknowledge_breaking", False)
        command = approve_command(self.args, name, gate.destructive, gate.breaking)
        if self.args.auto_approve and (breaking_ok or not gate.breaking):
            self._decide(req, self.actor.as_source("auto"), True, "--auto-approve")
            say(f"    auto-approved {name} (plan {req.plan.fingerprint})")
            return self._after_own_approval(req, command)
        show_plan(req.checkpoint.name, req.plan, gate, req.why_not)
        if self.args.auto_approve:  # a breaking plan is never approved blind
            say(red("    --auto-approve does not approve a plan that breaks apps: review it, "
                    "then approve it (or run again with --acknowledge-breaking)"))
            say(f"    approve with:  {command}\n    then resume:   {resume_command(self.args)}")
            return "pending"
        if self.args.no_wait:
            say(f"    approve with:  {command}{file_hint(req)}\n"
                f"    then resume:   {resume_command(self.args)}")
            return "pending"
        if sys.stdin.isatty():
            answer = self._prompt(req)
            return self._after_own_approval(req, command) if answer == "approved" else answer
        say(f"    waiting for an approval; give it with:\n      {command}\n"
            f"    or POST /api/v1/approvals/{name}{file_hint(req)}")
        return self._wait(req, command)

    def _after_own_approval(self, req: GateRequest, command: str) -> str:
        """Approved here; a gate that needs more approvers (approvals.policy) waits for them."""
        ctx, name = req.ctx, req.checkpoint.name
        verdict = approvals.evaluate(ctx.store, ctx.run_id, name, req.plan.fingerprint, req.gate)
        if verdict.state != "missing":
            return verdict.state
        say(f"    {verdict.progress}: {name} needs "
            f"{verdict.needed - len(verdict.approvals)} more, from other approvers:\n"
            f"      {command}")
        if self.args.no_wait:
            say(f"    then resume:   {resume_command(self.args)}")
            return "pending"
        return self._wait(req, command)

    def _wait(self, req: GateRequest, command: str) -> str:
        ctx, name, gate = req.ctx, req.checkpoint.name, req.gate
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
        by = ", ".join(printable(r.approver) for r in verdict.approvals) \
            if verdict.state == "approved" else printable(verdict.record.approver)
        say(f"    {verdict.state} by {by} after {time.monotonic() - started:.0f}s")
        return verdict.state

    def _prompt(self, req: GateRequest) -> str:
        answer = prompt_decision(req.checkpoint.name, req.gate)
        if answer is None:
            say("\n    no answer: the run stays awaiting approval")
            return "pending"
        approved, reason = answer
        self._decide(req, self.actor, approved,
                     reason or f"{'approved' if approved else 'declined'} at the prompt")
        return "approved" if approved else "rejected"


def prompt_decision(name: str, gate) -> tuple[bool, str | None] | None:
    """Ask at the terminal: (approved, reason), or None when there is no answer. A
    destructive plan is approved only by typing the checkpoint name, a breaking one by
    typing 'NAME breaking' (in red)."""
    try:
        if gate.breaking:
            expected = f"{name} breaking"
            answer = input(red(f"    This plan BREAKS apps. Type '{expected}' to approve "
                               f"it anyway, or press Enter to reject: "))
            approved = answer.strip() == expected
        elif gate.destructive:
            answer = input(f"    Type the checkpoint name ({name}) to approve, "
                           f"or press Enter to reject: ")
            approved = answer.strip() == name
        else:
            answer = input(f"    Approve {name}? [y/N]: ")
            approved = answer.strip().lower() in ("y", "yes")
        reason = input("    Reason (optional): ").strip() or None
    except (EOFError, KeyboardInterrupt):
        return None
    return approved, reason


def file_hint(req: GateRequest) -> str:
    """How to approve with a file, when approvals.file_dir is set."""
    file_dir = req.ctx.config.approvals.file_dir
    if not file_dir:
        return ""
    words = " ".join([req.plan.fingerprint] + (["acknowledge-risks"] if req.gate.destructive else [])
                     + (["acknowledge-breaking"] if req.gate.breaking else []))
    path = file_approvals.file_for(file_dir, req.checkpoint.name)
    return f"\n    or write:      echo {shlex.quote(words)} > {shlex.quote(str(path))}"


def red(text: str) -> str:
    """Red on a terminal (the breaking parts of a plan); as it is in a pipe or a log."""
    return f"\x1b[1;31m{text}\x1b[0m" if sys.stdout.isatty() else text


def show_plan(name: str, plan, gate, why_not: str = "") -> None:
    kind = "BREAKING, DESTRUCTIVE " if gate.breaking else "DESTRUCTIVE " if gate.destructive else ""
    say(f"    {name} needs {kind}approval (plan {plan.fingerprint}, risk: {gate.risk})")
    for action in plan.actions:
        flag = "   [BREAKING]" if action.breaks else "   [destructive]" if action.destructive else ""
        line = f"      - {printable(action.describe(changes=False))}{flag}"
        say(red(line) if action.breaks else line)
        for change in action.change_lines():
            say(f"          {printable(change)}")
        for impact_line in impact_lines(action.impact):
            say(red(impact_line) if "BREAKS" in impact_line else impact_line)
    for reason in gate.reasons:
        line = f"      why: {printable(reason)}"
        say(red(line) if reason.startswith("BREAKING") else line)
    if why_not:
        say(f"      note: {printable(why_not)}")


def impact_lines(impact: dict | None) -> list[str]:
    """An action's impact block, as the approver reads it."""
    if not impact:
        return []
    out = []
    replicas = impact.get("replicas") or {}
    if replicas:
        out.append("          displaces replicas: " + ", ".join(
            f"{printable(k)} x{v}" for k, v in replicas.items()))
    if impact.get("actors"):
        out.append("          displaces actors: " + ", ".join(map(printable, impact["actors"])))
    if impact.get("jobs"):
        out.append("          running jobs: " + ", ".join(map(printable, impact["jobs"])))
    if impact.get("gpus_in_use"):
        out.append(f"          GPUs in use: {impact['gpus_in_use']:g}")
    if impact.get("object_store_bytes_in_use"):
        out.append(f"          object store in use: {impact['object_store_bytes_in_use'] / 2**20:.1f} MiB")
    if not out and "replicas" in impact:  # measured, and nothing runs there
        out.append("          displaces nothing that runs")
    for text in impact.get("shortfalls") or []:
        out.append(f"          BREAKS: {printable(text)}")
    for text in impact.get("notes") or []:
        out.append(f"          {printable(text)}")
    return out


def approve_command(args, name: str, destructive: bool, breaking: bool = False) -> str:
    return commands.approve_command(name, destructive, breaking, config=args.config,
                                    state_dir=args.state_dir)


def resume_command(args) -> str:
    return commands.deploy_master("--resume", config=args.config, state_dir=args.state_dir)

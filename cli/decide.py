"""deploy_master.py approve NAME | reject NAME: a decision on the plan this command shows."""
from __future__ import annotations

import sys

from checkpoints import approvals
from checkpoints.access import Actor
from checkpoints.base import Context
from checkpoints.plan import Plan
from cli.gate import resume_command, show_plan
from cli.output import EXIT_OK, say
from cli.status import gate_progress
from core.facts import RunStatus
from core.text import printable


def cmd_decide(args, ctx: Context, actor: Actor) -> int:
    """Decide on the plan this command shows: the decision names that run and fingerprint
    (or the ones given with --run / --fingerprint), so a plan that took its place meanwhile
    (another run at the same gate, a changed plan) is refused, never decided on unseen."""
    decision = "approve" if args.command == "approve" else "reject"
    request = ctx.store.approvals.open_request_for(args.name)
    run_id = args.run or (request.run_id if request else None)
    fingerprint = args.fingerprint or (request.fingerprint if request else None)
    if request is not None:  # what is being decided, in full
        say(f"    run {request.run_id}, requested by {printable(request.requester)}")
        show_plan(args.name, Plan.from_dict(request.plan), approvals.gate_of(request))
        if decision == "approve" and sys.stdin.isatty():
            answer = input(f"    Approve plan {fingerprint} of run {run_id} at {args.name}? "
                           f"[y/N]: ")
            if answer.strip().lower() not in ("y", "yes"):
                say("not approved: nothing was recorded")
                return EXIT_OK
    record = approvals.decide(ctx.store, actor, args.name, approvals.Ballot(
        decision, run_id, fingerprint, args.reason,
        acknowledge_risks=getattr(args, "acknowledge_risks", False),
        acknowledge_breaking=getattr(args, "acknowledge_breaking", False)),
        approvals.GateRules.of(ctx, args.name))
    by = record.approver + (f" (claimed: {record.claimed_by})" if record.claimed_by else "")
    say(f"{record.decision} {args.name} plan {record.plan_fingerprint} of run {record.run_id} "
        f"(record {record.id}) by {printable(by)}")
    run = ctx.store.runs.get_run(record.run_id) if record.run_id else None
    progress = gate_progress(ctx, request) if decision == "approve" and request else None
    if run is not None and run.status == RunStatus.REJECTED:
        say(f"run {run.id} ended as rejected")
    elif progress:
        say(f"{progress}: {args.name} needs more approvals (approvals.policy) before it applies")
    elif decision == "approve" and ctx.store.leases.current_lease() is None:
        say(f"continue with: {resume_command(args)}")
    return EXIT_OK

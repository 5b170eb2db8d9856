"""deploy_master.py cleanup-hosts [--host NAME]: stop Ray that this tool did not start on the
platform's hosts (ssh), as a one-step run of the host_cleanup operation: its plan shows each
host, pid and command, its gate is always a destructive approval (decided here as any gate:
at the terminal, by --auto-approve, or by others, then --resume)."""
from __future__ import annotations

from checkpoints.access import Actor
from checkpoints.base import Context
from checkpoints.host_cleanup import HostCleanup
from checkpoints.orchestrator import Orchestrator
from cli.gate import CliGatekeeper, resume_command
from cli.output import say
from cli.run import RUN_EXIT
from core.facts import RunStatus
from core.text import printable


def cmd_cleanup_hosts(args, ctx: Context, actor: Actor) -> int:
    op = HostCleanup(host=args.host)
    op.precheck(ctx)  # a platform without hosts of its own, a host not in the inventory
    orchestrator = Orchestrator(ctx, CliGatekeeper(args, actor), {op.name: op})
    orchestrator.acquire()
    try:
        run = orchestrator.create_run("operation", [op.name], actor, op.options(),
                                      audit_action=op.action)
        say(f"run {run.id}: {op.name} of {op.target} on {ctx.config.platform}")
        run = orchestrator.execute(run)
    finally:
        orchestrator.release()
    if run.status == RunStatus.SUCCEEDED:
        stopped = op.result.get("stopped") or []
        say(f"run {run.id} succeeded: {len(stopped)} process(es) stopped" if stopped
            else f"run {run.id} succeeded: no Ray that this tool did not start on {op.target}")
    elif run.status == RunStatus.AWAITING_APPROVAL:
        say(f"run {run.id} is awaiting approval at {op.name}; after approving, continue with: "
            f"{resume_command(args)}")
    else:
        say(f"run {run.id} {run.status}: {printable(run.error or '')}", err=True)
    return RUN_EXIT[run.status]

"""deploy_master.py --deploy | --resume | --teardown | --checkpoint NAME | --start-from NAME:
a run in this process, its gates decided at the terminal (cli/gate.py) or by others."""
from __future__ import annotations

import os
import time

from checkpoints.access import Actor
from checkpoints.base import Context
from checkpoints.orchestrator import Orchestrator, selection_for
from checkpoints.preview import load_plan_file
from cli.gate import CliGatekeeper, resume_command
from cli.output import EXIT_AWAITING, EXIT_FAILED, EXIT_OK, EXIT_REJECTED, say, say_config_warnings
from cli.status import print_endpoints
from core.facts import RunStatus
from core.text import printable

RUN_EXIT = {RunStatus.SUCCEEDED: EXIT_OK, RunStatus.FAILED: EXIT_FAILED,
            RunStatus.AWAITING_APPROVAL: EXIT_AWAITING, RunStatus.REJECTED: EXIT_REJECTED,
            RunStatus.CANCELLED: EXIT_FAILED, RunStatus.INTERRUPTED: EXIT_FAILED}



def cmd_run(args, ctx: Context, actor: Actor) -> int:
    orchestrator = Orchestrator(ctx, CliGatekeeper(args, actor))
    orchestrator.acquire()  # also marks runs left 'running' by a crashed process interrupted
    try:
        if args.resume:
            earlier = orchestrator.resumable_run(args.run_id)  # a rejected one: RunRejected
            run = orchestrator.resume(earlier, actor)
            next_up = run.remaining[0] if run.remaining else "its end"
            say(f"resuming run {run.id} ({run.mode}, {earlier.status}) at {next_up}: "
                f"{len(run.selection) - len(run.remaining)} of {len(run.selection)} checkpoints "
                f"done; each remaining one re-reads the live state first")
        else:
            mode, name = run_mode(args)
            options = {"force": args.force}
            if args.plan_file:
                options["expected_fingerprints"] = load_plan_file(args.plan_file)
            run = orchestrator.create_run(mode, selection_for(mode, name), actor, options)
            say(f"run {run.id}: {mode}" + (f" {name}" if name else "")
                + f" on {ctx.config.platform} ({ctx.config.source})")
        say_config_warnings(ctx.config)
        if os.environ.get("RAY_ADDRESS", "").strip():
            say(f"warning: RAY_ADDRESS is ignored here: runs act on the cluster of "
                f"{ctx.config.source} (RAY_ADDRESS is read by the API and validation only)")
        started = time.monotonic()
        run = orchestrator.execute(run)
    finally:
        orchestrator.release()
    elapsed = time.monotonic() - started
    status = run.status
    if status == RunStatus.SUCCEEDED:
        say(f"run {run.id} succeeded in {elapsed:.1f}s")
        if run.mode != "teardown":
            print_endpoints(ctx)
    elif status == RunStatus.AWAITING_APPROVAL:
        say(f"run {run.id} is awaiting approval at {run.failed_checkpoint}; "
            f"after approving, continue with: {resume_command(args)}")
    elif status == RunStatus.REJECTED:
        say(f"run {run.id} rejected: {printable(run.error)}", err=True)
    else:
        error = run.error or ""
        if "\n" in error:  # its lines were shown with the checkpoint, above
            error = error.splitlines()[0] + " (above)"
        say(f"run {run.id} {status}: {error}\n"
            f"fix the cause and continue with: {resume_command(args)}", err=True)
    return RUN_EXIT[status]


def run_mode(args) -> tuple[str, str | None]:
    if args.teardown:
        return "teardown", None
    if args.checkpoint:
        return "checkpoint", args.checkpoint
    if args.start_from:
        return "start_from", args.start_from
    return "deploy", None

#!/usr/bin/env python3
"""deploy_master: deploy and operate a Ray cluster through ordered, resumable checkpoints.

    python deploy_master.py --deploy [--auto-approve] [--config FILE]
    python deploy_master.py --resume | --status | --list-checkpoints | --teardown
    python deploy_master.py approve NAME [--acknowledge-risks] [--reason R]
    python deploy_master.py reject NAME --reason R
    python deploy_master.py audit [--since WHEN] [--format jsonl] | audit verify [--expect-head H]

Exit codes: 0 done, 1 failed, 2 usage or config error, 3 awaiting approval, 4 rejected.
"""
from __future__ import annotations

import argparse
import logging
import os
import pwd
import sys
import time

from checkpoints import CHECKPOINTS, ORDER, approvals, notifications
from checkpoints.access import Actor, cli_actor, principals_for, require_identities
from checkpoints.base import Context
from checkpoints.errors import RunRejected
from checkpoints.factory import make_context
from checkpoints.operations import gate_names
from checkpoints.orchestrator import Orchestrator, selection_for
from checkpoints.plan import Plan
from checkpoints.preview import load_plan_file
from cli.audit import cmd_audit
from cli.control_plane import TIMEOUT, ControlPlane, read_token
from cli.gate import CliGatekeeper, resume_command, show_plan
from cli.output import (
    EXIT_AWAITING,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    LineReporter,
    say,
    say_config_warnings,
)
from cli.plan import cmd_plan
from cli.remote import Remote, server_of
from cli.status import cmd_status, gate_progress, print_endpoints
from cluster.config import ConfigError, load_config
from cluster.platforms import REGISTRY
from core.errors import DomainError, Forbidden, Invalid
from core.facts import RunStatus
from core.text import printable
from store import StoreUnavailable

RUN_EXIT = {RunStatus.SUCCEEDED: EXIT_OK, RunStatus.FAILED: EXIT_FAILED,
            RunStatus.AWAITING_APPROVAL: EXIT_AWAITING, RunStatus.REJECTED: EXIT_REJECTED,
            RunStatus.CANCELLED: EXIT_FAILED, RunStatus.INTERRUPTED: EXIT_FAILED}


def exit_code_for(error: DomainError) -> int:
    """The one mapping of domain errors to exit codes: a rejected run -> 4; the caller's
    input, rights or setup (config, state dir, store) is at fault -> 2; the state of things
    -> 1."""
    if isinstance(error, RunRejected):
        return EXIT_REJECTED
    return EXIT_USAGE if isinstance(error, (Invalid, Forbidden, StoreUnavailable)) else EXIT_FAILED


def show_platform_calls() -> None:
    """--verbose: each platform call as a line on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("    . %(message)s"))
    log = logging.getLogger("raydeploy.platform")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def os_user() -> str:
    """Who runs this: the OS account of the process (not $USER, which anyone can set)."""
    return pwd.getpwuid(os.getuid()).pw_name


# -- commands --------------------------------------------------------------------------------------------
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
            mode, name = _mode(args)
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
        say(f"run {run.id} {status}: {run.error}\n"
            f"fix the cause and continue with: {resume_command(args)}", err=True)
    return RUN_EXIT[status]


def _mode(args) -> tuple[str, str | None]:
    if args.teardown:
        return "teardown", None
    if args.checkpoint:
        return "checkpoint", args.checkpoint
    if args.start_from:
        return "start_from", args.start_from
    return "deploy", None


def cmd_decide(args, ctx: Context, actor: Actor) -> int:
    """Decide on the plan this command shows: the decision names that run and fingerprint
    (or the ones given with --run / --fingerprint), so a plan that took its place meanwhile
    (another run at the same gate, a changed plan) is refused, never decided on unseen."""
    decision = "approve" if args.command == "approve" else "reject"
    request = ctx.store.open_request_for(args.name)
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
        approvals.GateRules.of(ctx.config, args.name))
    by = record.approver + (f" (claimed: {record.claimed_by})" if record.claimed_by else "")
    say(f"{record.decision} {args.name} plan {record.plan_fingerprint} of run {record.run_id} "
        f"(record {record.id}) by {printable(by)}")
    run = ctx.store.get_run(record.run_id) if record.run_id else None
    progress = gate_progress(ctx, request) if decision == "approve" and request else None
    if run is not None and run.status == RunStatus.REJECTED:
        say(f"run {run.id} ended as rejected")
    elif progress:
        say(f"{progress}: {args.name} needs more approvals (approvals.policy) before it applies")
    elif decision == "approve" and ctx.store.current_lease() is None:
        say(f"continue with: {resume_command(args)}")
    return EXIT_OK


def cmd_remote(args, config, server: str) -> int:
    """Every command through the control plane at ``server`` (cli/remote.py)."""
    plane = ControlPlane(server, read_token(os.environ, args.token_file), args.server_timeout)
    plane.check_cluster(config.cluster_name, config.platform)  # before any token is sent
    remote = Remote(args, config, plane)
    if args.command == "audit":
        return remote.audit()
    if args.command == "plan":
        return remote.plan()
    if args.command:
        return remote.decide()
    if args.status:
        return remote.status()
    if args.list_checkpoints:
        return remote.list_checkpoints()
    mode, name = _mode(args)
    return remote.run(mode, name)


def cmd_list(args, ctx: Context) -> int:
    say(f"{'#':<3}{'checkpoint':<16}{'gate':<62}last result")
    for i, cp in enumerate(CHECKPOINTS, 1):
        last = ctx.store.last_result(cp.name)
        say(f"{i:<3}{cp.name:<16}{cp.gate_policy:<68}{last.status if last else '-'}")
    return EXIT_OK


# -- argument parsing ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    def common_options(default):
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--config", metavar="FILE", default=default,
                            help="cluster config (default: examples/cluster.local.yaml)")
        common.add_argument("--state-dir", metavar="DIR", default=default,
                            help="state directory (overrides state_dir)")
        common.add_argument("--verbose", "-v", action="store_true", default=default,
                            help="also print every platform call (method, path, status, time)")
        common.add_argument("--operator", default=default, metavar="NAME",
                            help="a name to record beside your OS user in the audit trail "
                                 "(never instead of it)")
        common.add_argument("--server", default=default, metavar="URL",
                            help="act through the control plane at URL (or RAYDEPLOY_SERVER); "
                                 "its token from RAYDEPLOY_TOKEN or --token-file")
        common.add_argument("--token-file", default=default, metavar="FILE",
                            help="a file holding your control plane token (mode 600)")
        common.add_argument("--server-timeout", default=default, type=float, metavar="SECONDS",
                            help="how long an unreachable control plane is tried (default 10)")
        return common
    # Given before or after the subcommand; a subcommand must not reset them to None.
    common, sub_common = common_options(None), common_options(argparse.SUPPRESS)

    parser = argparse.ArgumentParser(prog="deploy_master.py", parents=[common],
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Exit codes: 0 done, 1 failed, 2 usage or config error,"
                                            " 3 awaiting approval, 4 rejected.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--deploy", action="store_true", help="run the checkpoints in order")
    action.add_argument("--resume", action="store_true",
                        help="continue the last run that failed, was interrupted or awaits approval")
    action.add_argument("--status", action="store_true", help="show the last run and the cluster")
    action.add_argument("--list-checkpoints", action="store_true", help="list the checkpoints")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="--status as JSON (the run, nodes, endpoints and how to use them)")
    action.add_argument("--teardown", action="store_true",
                        help="stop every node of the cluster (destructive: gated)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--checkpoint", metavar="NAME", choices=ORDER, help="run only this checkpoint")
    scope.add_argument("--start-from", metavar="NAME", choices=ORDER,
                       help="run from this checkpoint to the end")
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every gate (recorded with source 'auto'; needs the "
                             "approver role)")
    parser.add_argument("--acknowledge-breaking", action="store_true",
                        help="with --auto-approve: approve plans that break apps too (never "
                             "without it)")
    parser.add_argument("--no-wait", action="store_true",
                        help="at a gate without an approval, exit at once (code 3)")
    parser.add_argument("--force", action="store_true",
                        help="re-run jobs even if they already succeeded for the same spec")
    parser.add_argument("--plan-file", metavar="FILE",
                        help="apply exactly the plans saved by `plan --out FILE`: stop (exit 1) "
                             "at the first checkpoint whose live plan differs")

    sub = parser.add_subparsers(dest="command", metavar="{plan,approve,reject,audit}")
    for name, helptext in (("approve", "approve the plan awaiting approval at a checkpoint"),
                           ("reject", "reject it (ends the run as rejected: final)")):
        p = sub.add_parser(name, parents=[sub_common], help=helptext)
        p.add_argument("name", metavar="NAME", choices=gate_names(),
                       help="a checkpoint or an operation (node_remove, app_delete, ...)")
        p.add_argument("--reason", help="why (kept in the audit trail)")
        p.add_argument("--fingerprint", help="the plan fingerprint you reviewed (default: the "
                                             "one this command shows)")
        p.add_argument("--run", metavar="RUN_ID", help="the run whose plan you reviewed "
                                                       "(default: the one this command shows)")
        if name == "approve":
            p.add_argument("--acknowledge-risks", action="store_true",
                           help="required to approve a destructive gate")
            p.add_argument("--acknowledge-breaking", action="store_true",
                           help="required (with --acknowledge-risks) to approve a plan that "
                                "breaks apps")
    plan = sub.add_parser("plan", parents=[sub_common],
                          help="every checkpoint's plan, from the live cluster, before anything "
                               "changes (--out FILE saves it for --plan-file)")
    plan.add_argument("--out", metavar="FILE", help="save the plan as JSON")
    audit = sub.add_parser("audit", parents=[sub_common],
                           help="print the audit trail (or check it: audit verify)")
    audit.add_argument("audit_command", nargs="?", choices=("list", "verify"), default="list")
    audit.add_argument("--since", metavar="WHEN",
                       help="a date, a time, a Unix time or a duration back (2h, 30m)")
    audit.add_argument("--action", help="an action or its family (approval, run.start, ...)")
    audit.add_argument("--format", choices=("text", "jsonl"), default="text")
    audit.add_argument("--expect-head", metavar="HASH",
                       help="verify: fail unless the trail still reaches this head (as an "
                            "earlier export or notification gave it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.server_timeout = args.server_timeout or TIMEOUT
    running = args.deploy or args.resume or args.teardown or args.checkpoint or args.start_from
    if not (running or args.status or args.list_checkpoints or args.command):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "verbose", False):
        show_platform_calls()
    try:
        config = load_config(args.config, state_dir_override=args.state_dir)
        makes = bool(args.deploy or args.resume or args.checkpoint or args.start_from)
        server = server_of(args) or REGISTRY[config.platform].control_plane_url(
            config, principals_for(config).digests() if makes else [], say, make=makes)
        if server is not None:
            return cmd_remote(args, config, server)
        ctx = make_context(config, LineReporter(), force=bool(args.force))
        actor = cli_actor(config, os_user(), args.operator)
        if args.command == "audit":
            return cmd_audit(args, ctx.store)
        if args.command == "plan":
            return cmd_plan(args, ctx)
        if args.command or running:  # deciding or running: the approval rules must hold
            require_identities(config, principals_for(config, for_cli=True))
        if args.command:
            return cmd_decide(args, ctx, actor)
        if args.status:
            return cmd_status(args, ctx)
        if args.list_checkpoints:
            return cmd_list(args, ctx)
        return cmd_run(args, ctx, actor)
    except ConfigError as e:
        say(f"error: {e}" + ("\nnothing was started." if "\n" in str(e) else ""), err=True)
        return EXIT_USAGE
    except DomainError as e:  # one line, never a traceback
        say(f"error: {printable(e)}", err=True)
        return exit_code_for(e)
    except KeyboardInterrupt:
        say("\ninterrupted: resume with --resume", err=True)
        return EXIT_FAILED
    finally:
        notifications.flush_at_exit()  # a few seconds at most; what is left is recorded


if __name__ == "__main__":
    sys.exit(main())

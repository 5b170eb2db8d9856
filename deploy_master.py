#!/usr/bin/env python3
"""deploy_master: deploy and operate a Ray cluster through ordered, resumable checkpoints.

    python deploy_master.py --deploy [--auto-approve] [--config FILE]
    python deploy_master.py --resume | --status | --list-checkpoints | --teardown
    python deploy_master.py approve NAME [--acknowledge-risks] [--reason R]
    python deploy_master.py reject NAME --reason R

Exit codes: 0 done, 1 failed, 2 usage or config error, 3 awaiting approval, 4 rejected.
"""
from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
import time

from checkpoints import BY_NAME, CHECKPOINTS, ORDER, approvals
from checkpoints.base import Context
from checkpoints.factory import make_context
from checkpoints.orchestrator import GateRequest, Orchestrator, selection_for, wait_for_decision
from checkpoints.runs import transition
from cluster.config import ConfigError, load_config
from core.errors import DomainError, Forbidden, Invalid
from core.facts import Outcome, RunStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AWAITING, EXIT_REJECTED = 0, 1, 2, 3, 4
RUN_EXIT = {RunStatus.SUCCEEDED: EXIT_OK, RunStatus.FAILED: EXIT_FAILED,
            RunStatus.AWAITING_APPROVAL: EXIT_AWAITING, RunStatus.REJECTED: EXIT_REJECTED,
            RunStatus.CANCELLED: EXIT_FAILED, RunStatus.INTERRUPTED: EXIT_FAILED}
STATUS_EVERY = 10.0


def exit_code_for(error: DomainError) -> int:
    """The one mapping of domain errors to exit codes: the caller's input (or rights) is at
    fault -> 2; the state of things -> 1."""
    return EXIT_USAGE if isinstance(error, (Invalid, Forbidden)) else EXIT_FAILED


class CliError(DomainError):
    """A CLI-level refusal with its own exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def say(text: str = "", err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


# -- progress ---------------------------------------------------------------------------------------
class LineReporter:
    """One line per checkpoint outcome, and a status line at least every 10 s while waiting."""

    def __init__(self):
        self.last_output = time.monotonic()
        self.prefix = ""

    def checkpoint_started(self, name, index, total):
        self.prefix = f"[{index}/{total}] {name}"
        self.last_output = time.monotonic()

    def checkpoint_finished(self, name, outcome, seconds, detail=""):
        outcome = Outcome(outcome)
        line = f"{self.prefix:<32} {outcome.label} ({seconds:.2f}s)"
        if detail and outcome in (Outcome.FAILED, Outcome.REJECTED, Outcome.CANCELLED):
            line += f"\n    {detail}".replace("\n", "\n    ")
        say(line)
        self.last_output = time.monotonic()

    def waiting(self, message):
        if time.monotonic() - self.last_output >= STATUS_EVERY:
            say(f"    ... {message}")
            self.last_output = time.monotonic()

    def message(self, text):
        say(f"    {text}")
        self.last_output = time.monotonic()


# -- gate ----------------------------------------------------------------------------------------------
class CliGatekeeper:
    """Decides at a gate: --auto-approve, an interactive prompt (TTY), or waiting for an
    approval given elsewhere (``approve`` or the API), or, with --no-wait, stopping at once."""

    def __init__(self, args, operator: str):
        self.args = args
        self.operator = operator

    def __call__(self, req: GateRequest) -> str:
        ctx, name, gate = req.ctx, req.checkpoint.name, req.gate
        if self.args.auto_approve:
            approvals.decide(ctx.store, checkpoint=name, decision="approve", approver=self.operator,
                             source="auto", ttl_seconds=ctx.config.approvals.ttl_seconds,
                             reason="--auto-approve", acknowledge_risks=True)
            say(f"    auto-approved {name} (plan {req.plan.fingerprint})")
            return "approved"
        self._show(req)
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
        say(f"    {verdict.state} by {verdict.record.approver} after {time.monotonic() - started:.0f}s")
        return verdict.state

    def _show(self, req: GateRequest) -> None:
        gate = req.gate
        say(f"    {req.checkpoint.name} needs {'DESTRUCTIVE ' if gate.destructive else ''}approval"
            f" (plan {req.plan.fingerprint}, risk: {gate.risk})")
        for action in req.plan.actions:
            say(f"      - {action.describe()}{'   [destructive]' if action.destructive else ''}")
        for reason in gate.reasons:
            say(f"      why: {reason}")
        if req.why_not:
            say(f"      note: {req.why_not}")

    def _prompt(self, req: GateRequest) -> str:
        ctx, name = req.ctx, req.checkpoint.name
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
        approvals.decide(ctx.store, checkpoint=name, decision="approve" if approved else "reject",
                         approver=self.operator, source="cli",
                         ttl_seconds=ctx.config.approvals.ttl_seconds,
                         reason=reason or f"{'approved' if approved else 'declined'} at the prompt",
                         acknowledge_risks=approved and req.gate.destructive)
        return "approved" if approved else "rejected"


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


# -- commands --------------------------------------------------------------------------------------------
def cmd_run(args, ctx: Context, operator: str) -> int:
    orchestrator = Orchestrator(ctx, CliGatekeeper(args, operator))
    orchestrator.acquire()  # also marks runs left 'running' by a crashed process interrupted
    try:
        if args.resume:
            latest = ctx.store.latest_run()
            if latest and latest.status == RunStatus.REJECTED and not args.run_id:
                say(f"run {latest.id} was rejected ({latest.error}); "
                    f"start a new one with --deploy", err=True)
                return EXIT_REJECTED
            run = orchestrator.resume(orchestrator.resumable_run(args.run_id))
            say(f"resuming run {run.id} ({run.mode})")
        else:
            mode, name = _mode(args)
            run = orchestrator.create_run(mode, selection_for(mode, name), operator, "cli",
                                          {"force": args.force})
            say(f"run {run.id}: {mode}" + (f" {name}" if name else "")
                + f" on {ctx.config.platform} ({ctx.config.source})")
        for warning in ctx.config.warnings:
            say(f"warning: {warning}")
        started = time.monotonic()
        run = orchestrator.execute(run)
    finally:
        orchestrator.release()
    elapsed = time.monotonic() - started
    status = run.status
    if status == RunStatus.SUCCEEDED:
        say(f"run {run.id} succeeded in {elapsed:.1f}s")
        if run.mode != "teardown":
            _print_endpoints(ctx)
    elif status == RunStatus.AWAITING_APPROVAL:
        say(f"run {run.id} is awaiting approval at {run.failed_checkpoint}; "
            f"after approving, continue with: {resume_command(args)}")
    elif status == RunStatus.REJECTED:
        say(f"run {run.id} rejected: {run.error}", err=True)
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


def _print_endpoints(ctx: Context) -> None:
    cluster, inventory = ctx.cluster, ctx.cluster.inventory
    if inventory.head_app() is None:
        return
    say(f"  head address : {inventory.head_address()}")
    say(f"  dashboard    : {inventory.dashboard_url()}")
    proxy = cluster.serve.proxy_url
    for app in ctx.config.serve_apps:
        say(f"  app {app.name:<9}: {proxy}{app.route_prefix}")
    if ctx.config.management_api.enabled:
        say(f"  management API: {cluster.serve.management_api_url()}  (docs: /docs)")


def cmd_decide(args, ctx: Context, operator: str) -> int:
    decision = "approve" if args.command == "approve" else "reject"
    if args.name not in BY_NAME:
        raise CliError(f"unknown checkpoint {args.name!r}; choose one of "
                       f"{', '.join(BY_NAME)}", EXIT_USAGE)
    record, _ = approvals.decide(
        ctx.store, checkpoint=args.name, decision=decision, approver=operator, source="cli",
        ttl_seconds=ctx.config.approvals.ttl_seconds, reason=args.reason,
        acknowledge_risks=getattr(args, "acknowledge_risks", False), fingerprint=args.fingerprint)
    say(f"{record.decision} {args.name} plan {record.plan_fingerprint} "
        f"(record {record.id}) by {operator}")
    run = ctx.store.get_run(record.run_id) if record.run_id else None
    if (decision == "reject" and run and run.status == RunStatus.AWAITING_APPROVAL
            and ctx.store.current_lease() is None):
        # nobody is waiting on this run: end it here
        transition(ctx.store, run.id, RunStatus.REJECTED, failed_checkpoint=args.name,
                   error=f"{args.name} rejected by {operator}" + (f": {args.reason}" if args.reason else ""))
        ctx.store.close_approval_requests(run.id, args.name)
        say(f"run {run.id} ended as rejected")
    elif decision == "approve" and ctx.store.current_lease() is None:
        say(f"continue with: {resume_command(args)}")
    return EXIT_OK


def cmd_status(args, ctx: Context) -> int:
    run = ctx.store.latest_run()
    if run is None:
        say("no runs yet")
    else:
        say(f"run {run.id} ({run.mode}, by {run.requester}): {run.status}"
            + (f" - {run.error}" if run.error else ""))
        for r in run.checkpoints:
            took = f" ({r.duration:.2f}s)" if r.duration is not None else ""
            say(f"  {r.checkpoint:<16} {r.status}{took}"
                + (f": {r.error.splitlines()[0]}" if r.error else ""))
    lease = ctx.store.current_lease()
    if lease:
        say(f"lease held by {lease.holder} (run {lease.run_id})")
    for req in ctx.store.approval_requests(open_only=True):
        say(f"awaiting approval: {req.checkpoint} plan {req.fingerprint}"
            f"{' (destructive)' if req.destructive else ''}: "
            f"{approve_command(args, req.checkpoint, req.destructive)}")
    inventory = ctx.cluster.inventory
    nodes = inventory.nodes() if inventory.head_app() else []
    say(f"nodes: {sum(n.alive for n in nodes)} alive of {len(nodes)}")
    for n in nodes:
        say(f"  {n.platform_app_name or '-':<24} {n.node_type:<6} {n.node_ip or '-':<12} "
            f"{'ALIVE' if n.alive else 'NOT ALIVE'} CPU={n.resources.get('CPU', 0)}")
    return EXIT_OK


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
        common.add_argument("--operator", default=default,
                            help="who you are, for the audit trail (default: $USER)")
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
    action.add_argument("--teardown", action="store_true",
                        help="stop every node of the cluster (destructive: gated)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--checkpoint", metavar="NAME", choices=ORDER, help="run only this checkpoint")
    scope.add_argument("--start-from", metavar="NAME", choices=ORDER,
                       help="run from this checkpoint to the end")
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--auto-approve", action="store_true",
                        help="approve every gate (recorded with source 'auto')")
    parser.add_argument("--no-wait", action="store_true",
                        help="at a gate without an approval, exit at once (code 3)")
    parser.add_argument("--force", action="store_true",
                        help="re-run jobs even if they already succeeded for the same spec")

    sub = parser.add_subparsers(dest="command", metavar="{approve,reject}")
    for name, helptext in (("approve", "approve the plan awaiting approval at a checkpoint"),
                           ("reject", "reject it (ends the run as rejected)")):
        p = sub.add_parser(name, parents=[sub_common], help=helptext)
        p.add_argument("name", metavar="NAME", help="checkpoint name")
        p.add_argument("--reason", help="why (kept in the audit trail)")
        p.add_argument("--fingerprint", help="the plan fingerprint you reviewed (default: the awaiting one)")
        if name == "approve":
            p.add_argument("--acknowledge-risks", action="store_true",
                           help="required to approve a destructive gate")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    running = args.deploy or args.resume or args.teardown or args.checkpoint or args.start_from
    if not (running or args.status or args.list_checkpoints or args.command):
        parser.print_help()
        return EXIT_USAGE
    operator = args.operator or os.environ.get("USER") or getpass.getuser()
    try:
        config = load_config(args.config, state_dir_override=args.state_dir)
        ctx = make_context(config, LineReporter(), force=bool(args.force))
        if args.command:
            return cmd_decide(args, ctx, operator)
        if args.status:
            return cmd_status(args, ctx)
        if args.list_checkpoints:
            return cmd_list(args, ctx)
        return cmd_run(args, ctx, operator)
    except ConfigError as e:
        say(f"error: {e}\nnothing was started.", err=True)
        return EXIT_USAGE
    except CliError as e:
        say(f"error: {e}", err=True)
        return e.code
    except DomainError as e:  # one line, never a traceback
        say(f"error: {e}", err=True)
        return exit_code_for(e)
    except KeyboardInterrupt:
        say("\ninterrupted: resume with --resume", err=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""deploy_master: deploy and operate a Ray cluster through ordered, resumable checkpoints.

    python deploy_master.py --deploy [--auto-approve] [--config FILE]
    python deploy_master.py --resume | --status | --list-checkpoints | --teardown
    python deploy_master.py approve NAME [--acknowledge-risks] [--reason R]
    python deploy_master.py reject NAME --reason R
    python deploy_master.py audit [--since WHEN] [--format jsonl] | audit verify [--expect-head H]

Exit codes: 0 done, 1 failed, 2 usage or config error, 3 awaiting approval, 4 rejected.

This file picks where a command runs (here, or through a control plane) and maps errors to
exit codes; each command is a module of cli/ (run, decide, status, plan, audit,
list_checkpoints; remote: all of them through a control plane).
"""
from __future__ import annotations

import logging
import os
import pwd
import sys

from checkpoints.access import cli_actor, principals_for, require_identities
from checkpoints.errors import RunRejected
from checkpoints.factory import make_context
from cli.audit import cmd_audit
from cli.control_plane import TIMEOUT, ControlPlane, read_token
from cli.decide import cmd_decide
from cli.hosts import cmd_cleanup_hosts
from cli.list_checkpoints import cmd_list
from cli.output import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE, LineReporter, say
from cli.parser import build_parser
from cli.plan import cmd_plan
from cli.remote import Remote, server_of
from cli.run import cmd_run, run_mode
from cli.status import cmd_status
from cluster.config import ConfigError, load_config
from cluster.platforms import REGISTRY
from core.errors import DomainError, Forbidden, Invalid
from core.text import printable
from store import StoreUnavailable


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


def cmd_remote(args, config, server: str) -> int:
    """Every command through the control plane at ``server`` (cli/remote.py)."""
    plane = ControlPlane(server, read_token(os.environ, args.token_file), args.server_timeout)
    plane.check_cluster(config.cluster_name, config.platform)  # before any token is sent
    remote = Remote(args, config, plane)
    if args.command == "audit":
        return remote.audit()
    if args.command == "plan":
        return remote.plan()
    if args.command == "cleanup-hosts":
        say("error: cleanup-hosts runs where the hosts are reached from; through a control "
            "plane, ask it: POST /api/v1/hosts/cleanup", err=True)
        return EXIT_USAGE
    if args.command:
        return remote.decide()
    if args.status:
        return remote.status()
    if args.list_checkpoints:
        return remote.list_checkpoints()
    mode, name = run_mode(args)
    return remote.run(mode, name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    args.server_timeout = args.server_timeout or TIMEOUT
    running = args.deploy or args.resume or args.teardown or args.checkpoint or args.start_from
    if not (running or args.status or args.list_checkpoints or args.command):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "verbose", False):
        show_platform_calls()
    ctx = None
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
        if args.command == "cleanup-hosts":
            return cmd_cleanup_hosts(args, ctx, actor)
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
        if ctx is not None:  # a few seconds at most; what is left is recorded
            ctx.notifier.flush_at_exit()


if __name__ == "__main__":
    sys.exit(main())

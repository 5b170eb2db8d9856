"""deploy_master.py's arguments: the options every command takes, before or after its
subcommand, and the commands."""
from __future__ import annotations

import argparse

from checkpoints import ORDER
from checkpoints.operations import gate_names


def build_parser(description: str = "") -> argparse.ArgumentParser:
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
                                     description=description,
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

    sub = parser.add_subparsers(dest="command",
                                metavar="{plan,approve,reject,audit,cleanup-hosts}")
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
    cleanup = sub.add_parser("cleanup-hosts", parents=[sub_common],
                             help="stop Ray that this tool did not start on the hosts (ssh): "
                                  "exactly the processes the plan shows, after a destructive "
                                  "approval")
    cleanup.add_argument("--host", help="one host (its inventory name); default: every host")
    for flag, helptext in (("--auto-approve", "approve the gate (needs the approver role)"),
                           ("--no-wait", "at the gate without an approval, exit at once (3)")):
        cleanup.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=helptext)
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

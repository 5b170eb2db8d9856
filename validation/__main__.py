"""python -m validation [--format text|json] [--checkpoint NAME] [--health-only]
                       [--approval-check NAME] [--config FILE] [--state-dir DIR]
                       [--address ADDRESS]

Runs live checks against the cluster and exits 0 only when every check passes
(1 when one fails, 2 for a usage or config error).

The cluster is the one the config's platform runs, or the Ray cluster at --address /
RAY_ADDRESS (host:port of its GCS, ray://host:port, or its dashboard's http://host:port;
RAY_AUTH_TOKEN when its token is not the config's). --approval-check always looks at the
platform's cluster: it compares the plan a deploy would make.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from checkpoints import BY_NAME, ORDER, approvals
from checkpoints.base import Context
from checkpoints.factory import make_context
from checkpoints.plan import gate_for
from cluster.config import load_config
from cluster.health import Check, all_checks
from cluster.ray_address import RayAddress, from_environ
from core.errors import DomainError, Invalid
from core.text import printable


def checkpoint_checks(ctx: Context, name: str) -> list[Check]:
    """Verify one checkpoint's goal holds now (its ``verify`` step, run on its own)."""
    problems = BY_NAME[name].verify(ctx)
    return [Check(f"checkpoint:{name}", not problems, "; ".join(problems) or "holds")]


def approval_check(ctx: Context, name: str) -> list[Check]:
    """Does the checkpoint's current plan need an approval, and does a valid one exist?"""
    checkpoint = BY_NAME[name]
    plan = checkpoint.plan(ctx)
    gate = gate_for(checkpoint, plan, ctx.config.approvals.required)
    if not gate.required:
        detail = "nothing to do" if plan.empty else "plan needs no approval"
        return [Check(f"approval:{name}", True, f"{detail} (plan {plan.fingerprint})")]
    request = ctx.store.approvals.open_request_for(name)
    if request is None or request.fingerprint != plan.fingerprint:
        return [Check(f"approval:{name}", False,
                      f"plan {plan.fingerprint} needs {gate.risk} approval and no run awaits it")]
    verdict = approvals.evaluate(ctx.store, request.run_id, name, plan.fingerprint, gate)
    ok = verdict.state == "approved"
    detail = (f"approved by {verdict.record.approver}" if ok else
              f"{verdict.state}" + (f": {verdict.why}" if verdict.why else ""))
    return [Check(f"approval:{name}", ok, f"plan {plan.fingerprint} {detail}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__.split("\n\n")[1])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--checkpoint", choices=ORDER, metavar="NAME",
                        help="check only that checkpoint's goal")
    parser.add_argument("--health-only", action="store_true", help="head and nodes only")
    parser.add_argument("--approval-check", choices=tuple(BY_NAME), metavar="NAME",
                        help="whether NAME's current plan has the approval it needs")
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument("--state-dir", metavar="DIR")
    parser.add_argument("--address", metavar="ADDRESS",
                        help="the Ray cluster to check (default: RAY_ADDRESS, else the "
                             "config's own cluster)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, state_dir_override=args.state_dir)
        for warning in config.warnings:  # on stderr: stdout may be JSON
            print(f"warning: {printable(warning)}", file=sys.stderr)
        address = (RayAddress.parse(args.address, token=os.environ.get("RAY_AUTH_TOKEN"))
                   if args.address else from_environ(os.environ))
        if args.approval_check:
            checks = approval_check(make_context(config), args.approval_check)
            return report(checks, args.format)
        ctx = make_context(config, ray_address=address)
        if args.checkpoint:
            checks = checkpoint_checks(ctx, args.checkpoint)
        else:
            checks = all_checks(ctx.cluster, health_only=args.health_only, ray_job=True)
    except Invalid as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DomainError as e:
        checks = [Check("cluster", False, str(e))]
    return report(checks, args.format)


def report(checks: list[Check], fmt: str) -> int:
    passed = all(c.ok for c in checks)
    if fmt == "json":
        print(json.dumps({"passed": passed, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        for c in checks:
            print(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<22} {c.detail}")
        print(f"{'all checks passed' if passed else 'some checks FAILED'} ({len(checks)} checks)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

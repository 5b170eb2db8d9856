"""deploy_master.py --status [--format text|json]: the latest run, the lease, what awaits
approval (with the command that decides it), the nodes and where the cluster answers."""
from __future__ import annotations

import json
from dataclasses import asdict

from checkpoints import approvals
from checkpoints.base import Context
from checkpoints.plan import policy_for
from cli.gate import approve_command
from cli.output import EXIT_OK, cluster_usage, say, say_endpoints, status_document
from core.text import printable


def print_endpoints(ctx: Context) -> None:
    if ctx.cluster.inventory.head_app() is not None:
        info = ctx.cluster.info()
        say_endpoints(info, ctx.config, _usage(ctx, info))


def _usage(ctx: Context, info: dict) -> dict:
    """How to use the cluster from here (its token in this state dir, by path)."""
    where = ("inside the platform's network: a session or job of the project"
             if info.get("head_url") else None)
    return cluster_usage(info, ctx.config, str((ctx.config.state_dir / "ray_token").resolve()),
                         where)


def gate_progress(ctx: Context, request) -> str | None:
    """'1 of 2 approvals (alice)' while a multi-party gate still needs approvers, else None."""
    policy = policy_for(ctx.config, request.checkpoint)
    if policy.min_approvals < 2:
        return None
    verdict = approvals.verdict_for(ctx.store, request, policy)
    return verdict.progress if verdict.state == "missing" else None


def cmd_status(args, ctx: Context) -> int:
    if args.format == "json":
        return _status_json(ctx)
    run = ctx.store.runs.latest_run()
    if run is None:
        say("no runs yet")
    else:
        say(f"run {run.id} ({run.mode}, by {printable(run.requester)}): {run.status}"
            + (f" - {run.error}" if run.error else ""))
        for r in run.checkpoints:
            took = f" ({r.duration:.2f}s)" if r.duration is not None else ""
            say(f"  {r.checkpoint:<16} {r.status}{took}"
                + (f": {r.error.splitlines()[0]}" if r.error else ""))
    lease = ctx.store.leases.current_lease()
    if lease:
        say(f"lease held by {lease.holder} (run {lease.run_id})")
    for req in ctx.store.approvals.approval_requests(open_only=True):
        progress = gate_progress(ctx, req)
        say(f"awaiting approval: {req.checkpoint} plan {req.fingerprint}"
            f"{' (BREAKING)' if req.breaking else ' (destructive)' if req.destructive else ''}"
            f"{f' ({progress})' if progress else ''}: "
            f"{approve_command(args, req.checkpoint, req.destructive, req.breaking)}")
    inventory = ctx.cluster.inventory
    nodes = inventory.nodes() if inventory.head_app() else []
    say(f"nodes: {sum(n.alive for n in nodes)} alive of {len(nodes)}")
    for n in nodes:
        say(f"  {n.platform_app_name or '-':<24} {n.node_type:<6} {n.node_ip or '-':<12} "
            f"{'ALIVE' if n.alive else 'NOT ALIVE'} CPU={n.resources.get('CPU', 0)}")
    if nodes:
        print_endpoints(ctx)
    return EXIT_OK


def _status_json(ctx: Context) -> int:
    """--status --format json: the same as data (what tools that follow a deploy read, as
    seed 003's ray_cluster_info.json)."""
    run = ctx.store.runs.latest_run()
    inventory = ctx.cluster.inventory
    nodes = inventory.nodes() if inventory.head_app() else []
    info = ctx.cluster.info() if nodes else {}
    say(json.dumps(status_document(
        ctx.config, run and {"id": run.id, "mode": run.mode, "status": run.status,
                             "error": run.error},
        [asdict(n) for n in nodes], info, _usage(ctx, info) if info else {}), indent=2))
    return EXIT_OK

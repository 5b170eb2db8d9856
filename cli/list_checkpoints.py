"""deploy_master.py --list-checkpoints: the checkpoints in order, their gates, their last
result."""
from __future__ import annotations

from checkpoints import CHECKPOINTS
from checkpoints.base import Context
from cli.output import EXIT_OK, say


def cmd_list(args, ctx: Context) -> int:
    say(f"{'#':<3}{'checkpoint':<16}{'gate':<62}last result")
    for i, cp in enumerate(CHECKPOINTS, 1):
        last = ctx.store.runs.last_result(cp.name)
        say(f"{i:<3}{cp.name:<16}{cp.gate_policy:<68}{last.status if last else '-'}")
    return EXIT_OK

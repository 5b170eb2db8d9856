"""deploy_master.py plan [--out plan.json]: the whole run, planned, before anything changes."""
from __future__ import annotations

import json
import time
from pathlib import Path

from checkpoints.plan import Gate, Plan
from checkpoints.preview import preview
from cli.gate import impact_lines, red
from cli.output import say, say_config_warnings
from core.text import printable


def cmd_plan(args, ctx) -> int:
    started = time.monotonic()
    result = preview(ctx)
    return show_preview(args, ctx.config, result, time.monotonic() - started)


def show_preview(args, config, result: dict, took: float, where: str = "") -> int:
    """Print a whole-run plan (``preview``'s answer), and save it with ``--out``."""
    say(f"plan of {config.cluster_name} on {config.platform} ({config.source}), "
        f"from the live cluster{where} ({took:.2f}s)")
    say_config_warnings(config)
    last = result["last_success"]
    if last:
        changes = result["config_changes"]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last["at"]))
        say(f"config changes since the last successful run ({last['run_id']}, {when}): "
            f"{len(changes) or 'none'}")
        for change in changes:
            say(f"  {change['key']}: {change.get('before', '(new)')!r} -> "
                f"{change.get('after', '(gone)')!r}")
    else:
        say("no successful run yet: everything below is new")
    gates = []
    total = len(result["checkpoints"])
    for index, step in enumerate(result["checkpoints"], 1):
        name = step["checkpoint"]
        prefix = f"[{index}/{total}] {name:<16}"
        if step["error"]:
            say(red(f"{prefix} would fail: {printable(step['error'])}"))
            continue
        plan, gate = Plan.from_dict(step["plan"]), Gate(**{
            k: step["gate"][k] for k in ("required", "destructive", "breaking")},
            reasons=tuple(step["gate"]["reasons"]))
        label = ("nothing to do" if plan.empty else
                 f"{gate.risk.upper()} approval" if gate.required else "no approval needed")
        line = f"{prefix} {label}" + ("" if plan.empty else f" (plan {plan.fingerprint})")
        say(red(line) if gate.breaking else line)
        for note in step["knock_on"]:
            say(f"      knock-on: {note}")
        for action in plan.actions:
            flag = "   [BREAKING]" if action.breaks else "   [destructive]" if action.destructive \
                else ""
            say(f"      - {printable(action.describe())}{flag}")
            for impact_line in impact_lines(action.impact):
                say(red(impact_line) if "BREAKS" in impact_line else impact_line)
        if gate.required:
            gates.append(f"{name} ({gate.risk})")
    say(f"gates: {', '.join(gates) if gates else 'none'}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
        say(f"saved to {args.out}: apply exactly this with --deploy --plan-file {args.out}")
    return 0

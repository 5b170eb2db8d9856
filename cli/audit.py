"""deploy_master.py audit [--since WHEN] [--action A] [--format text|jsonl] | audit verify"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime

from cli.output import say
from core.errors import Invalid
from core.text import printable


def parse_since(value: str | None, now: float) -> float | None:
    """``2026-11-24``, ``2026-11-24T08:00``, a Unix time, or a duration back: ``2h``, ``30m``."""
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
            return now - float(value[:-1]) * units[value[-1]]
        if value.replace(".", "", 1).isdigit():
            return float(value)
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise Invalid(f"--since {value!r}: give a date (2026-11-24), a time "
                      f"(2026-11-24T08:00), a Unix time or a duration (2h, 30m)",
                      field="since") from None


def cmd_audit(args, store) -> int:
    if args.audit_command == "verify":
        checked, problem = store.verify_audit()
        if problem:
            say(f"audit trail BROKEN after {checked} intact event(s): {problem}", err=True)
            return 1
        say(f"audit trail intact: {checked} event(s), every hash chained")
        return 0
    events = store.audit_events(since=parse_since(args.since, time.time()), action=args.action)
    for event in events:
        say_audit_event(event, args.format)
    return 0


def say_audit_event(event, fmt: str = "text") -> None:
    """One audit event (a record of the store, or one a control plane answered with)."""
    if fmt == "jsonl":
        fields = asdict(event) if is_dataclass(event) else vars(event)
        print(json.dumps(fields, sort_keys=True), flush=False)
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.created_at))
    who = event.principal + (f" ({event.claimed_name})" if event.claimed_name else "")
    extra = f" plan {event.plan_fingerprint}" if event.plan_fingerprint else ""
    reason = (event.detail or {}).get("reason")
    say(f"{event.seq:>5} {when} {printable(who)} [{event.source}] {event.action} "
        f"{printable(event.target)} -> {event.result}{extra}"
        + (f": {printable(reason)}" if reason else ""))

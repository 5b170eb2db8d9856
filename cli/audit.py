"""deploy_master.py audit [--since WHEN] [--action A] [--format text|jsonl] | audit verify
[--expect-head H]: an export ends with the trail's head, to be kept outside the store."""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime

from cli.output import say
from core.errors import Invalid
from core.text import printable

HEAD = re.compile(r"[0-9a-f]{64}")


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
        return _verify(store, args.expect_head)
    head = store.audit_log.audit_head()  # the export ends here, and says so: anchor it elsewhere
    events = store.audit_log.audit_events(since=parse_since(args.since, time.time()), action=args.action,
                                up_to_seq=head["seq"] if head else 0)
    for event in events:
        say_audit_event(event, args.format)
    say_audit_head(head, args.format)
    return 0


def say_audit_head(head: dict | None, fmt: str = "text") -> None:
    """Where the exported trail ends (jsonl: its last line), to be kept outside the store."""
    if fmt == "jsonl":
        print(json.dumps({"audit_head": head}, sort_keys=True))
    elif head:
        say(f"head: event {head['seq']} {head['hash']} (keep it elsewhere; later: "
            f"audit verify --expect-head {head['hash']})")


def _verify(store, expect_head: str | None) -> int:
    check = store.audit_log.verify_audit(expect_head=checked_head(expect_head))
    return report_verification(check.checked, check.problem, check.head, expect_head)


def checked_head(expect_head: str | None) -> str | None:
    if expect_head is not None and not HEAD.fullmatch(expect_head):
        raise Invalid(f"--expect-head {printable(expect_head)}: give the 64 hex digits of a "
                      f"head an export printed", field="expect_head")
    return expect_head


def report_verification(checked: int, problem: str | None, head: dict | None,
                        expect_head: str | None) -> int:
    """What a verification found (of this store, or as a control plane answered it)."""
    if problem:
        say(f"audit trail BROKEN after {checked} intact event(s): {printable(problem)}", err=True)
        return 1
    say(f"audit trail intact: {checked} event(s), every hash keyed and chained"
        + (f"; head: event {head['seq']} {head['hash']}" if head else ""))
    if expect_head and head and head["hash"] != expect_head:
        say(f"it reaches the expected head and continues past it to event {head['seq']}")
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

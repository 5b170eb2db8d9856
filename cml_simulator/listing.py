"""The list parameters every v2 list takes: ``search_filter``, ``sort``, ``page_size``, ``page_token``.

- ``search_filter`` is a JSON object; each key is a field (dotted keys such as
  ``creator.username`` reach into the nested object) and matches as a case-sensitive substring,
  as CML does. ``status`` is the exception: it takes the lowercase names the spec lists
  (``running``, ``stopped``, ...) and matches that status exactly.
- ``sort`` is a comma-separated list of keys, each with its own direction (``+`` or nothing:
  ascending, ``-``: descending), e.g. ``-updated_at,name``.
- ``page_size`` missing or <= 0 means the default, 10.
"""
from __future__ import annotations

import json

from cml_simulator.common import SimError

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000

# the spec's search_filter "status" values, per list
APP_STATUS_FILTER = {s: f"APPLICATION_{s.upper()}"
                     for s in ("running", "stopping", "stopped", "starting", "failed")}
RUN_STATUS_FILTER = {s: f"ENGINE_{s.upper()}" for s in
                     ("scheduling", "running", "stopping", "stopped", "succeeded", "failed",
                      "timedout")}


def page(items: list[dict], args, key: str, statuses: dict[str, str] | None = None) -> dict:
    """One page of ``items`` for the request arguments ``args``: ``{key: [...], next_page_token}``."""
    raw = args.get("search_filter")
    if raw:
        items = [i for i in items if matches(i, parse_filter(raw), statuses)]
    if args.get("sort"):
        items = sort(items, args["sort"])
    size, start = _int_arg(args, "page_size"), _int_arg(args, "page_token")
    size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
    start = max(start, 0)
    next_token = str(start + size) if start + size < len(items) else ""
    return {key: items[start:start + size], "next_page_token": next_token}


def _int_arg(args, name: str) -> int:
    try:
        return int(args.get(name) or 0)
    except ValueError:
        raise SimError(400, f"{name} must be an integer") from None


def parse_filter(raw: str) -> dict:
    try:
        wanted = json.loads(raw)
    except ValueError:
        raise SimError(400, "search_filter must be a JSON object") from None
    if not isinstance(wanted, dict):
        raise SimError(400, "search_filter must be a JSON object")
    return wanted


def field(item: dict, path: str):
    """The value at a dotted path (``owner.username``), or None."""
    value = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(item: dict, wanted: dict, statuses: dict[str, str] | None) -> bool:
    for key, value in wanted.items():
        if key == "status" and statuses is not None:
            if value not in statuses:
                raise SimError(400, f"search_filter status must be one of "
                                    f"{', '.join(statuses)} (got {value!r})")
            if item.get("status") != statuses[value]:
                return False
        elif not _matches_value(field(item, key), value):
            return False
    return True


def _matches_value(have, want) -> bool:
    if isinstance(have, bool):  # a boolean field compares as one: true/false, "t"/"f"
        want = str(want).lower()
        return want in (("true", "t", "1") if have else ("false", "f", "0"))
    if have is None:
        have = ""
    return str(want) in str(have)


def sort(items: list[dict], spec: str) -> list[dict]:
    """Sort by each key of ``spec`` in turn: stable sorts applied from the last key to the first."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    for key in reversed(keys):
        descending = key.startswith("-")
        name = key.lstrip("+-").strip()  # "+" may arrive as a space when not URL-encoded
        items = sorted(items, key=lambda i: _sort_key(field(i, name)), reverse=descending)
    return items


def _sort_key(value):
    """Numbers by value, everything else as text; missing values first."""
    if value is None:
        return (0, 0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value, "")
    return (2, 0, str(value))

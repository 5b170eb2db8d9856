"""Untrusted text (names, reasons, app names, messages from platforms) made safe to print:
control characters would move a terminal's cursor, recolour it, or fake output lines."""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: object) -> str:
    """One line: every control character escaped (newlines too)."""
    return _CONTROL.sub(_escape, str(text))


def printable_lines(text: object) -> str:
    """Our own multi-line messages: control characters escaped, newlines kept."""
    return _CONTROL_BUT_NEWLINE.sub(_escape, str(text))

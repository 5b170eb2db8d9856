"""Processes we start and stop: identity that survives pid reuse, and group shutdown.

Only processes this tool started are ever signalled, by pid or process group, and only when
their recorded start time still matches (a recycled pid belongs to somebody else).
"""
from __future__ import annotations

import os
import signal
import time


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # exited, waiting to be reaped
        return None
    return fields[19]


def find_session_leader(env_key: str, value: str) -> int | None:
    """The session leader whose environment has ``env_key=value`` (an app we started)."""
    needle = f"{env_key}={value}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != int(entry):
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    return int(entry)
        except (OSError, ProcessLookupError):
            continue
    return None


def is_ours(pid: int | None, recorded_start: str | None) -> bool:
    return bool(pid) and recorded_start is not None and start_time(pid) == recorded_start


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(pgid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group, wait up to ``grace_seconds``, then SIGKILL what is left.

    Ray's ``--block`` process leaves children running after SIGTERM, so the SIGKILL is the
    step that actually ends a node; the grace period lets well-behaved processes flush logs.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(pgid)
        if not group_alive(pgid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while group_alive(pgid) and time.monotonic() < deadline:
        _reap(pgid)
        time.sleep(0.05)


def _reap(pgid: int) -> None:
    """Collect the group leader if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass

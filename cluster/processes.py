"""Processes we start and stop: identity that survives pid reuse, and session shutdown.

Only processes this tool started are ever signalled: the sessions it started (each app,
job run and server in a session of its own), and only when the recorded start time of the
session's leader still matches (a recycled pid belongs to somebody else).
"""
from __future__ import annotations

import os
import signal

from core.timing import SYSTEM_CLOCK


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


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid``. Ray starts its workers (Serve replicas, the
    controller) in process groups of their own, but they stay in the node's session."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def session_alive(sid: int) -> bool:
    return bool(session_members(sid))


def stop_session(sid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM every process of the session we started (``start_new_session=True``: its
    leader's pid is the session id), wait up to ``grace_seconds``, then SIGKILL what is left.

    Ray's ``--block`` process leaves children running after SIGTERM, so the SIGKILL is the
    step that actually ends a node; the grace period lets well-behaved processes flush logs.
    A session, not a process group: Ray's workers sit in groups of their own."""
    if not _signal_session(sid, signal.SIGTERM):
        return
    deadline = SYSTEM_CLOCK.monotonic() + grace_seconds
    while SYSTEM_CLOCK.monotonic() < deadline:
        _reap(sid)
        if not session_alive(sid):
            return
        SYSTEM_CLOCK.sleep(0.1)
    _signal_session(sid, signal.SIGKILL)
    deadline = SYSTEM_CLOCK.monotonic() + 5
    while session_alive(sid) and SYSTEM_CLOCK.monotonic() < deadline:
        _reap(sid)
        SYSTEM_CLOCK.sleep(0.05)


def _signal_session(sid: int, sig: int) -> bool:
    """Signal the leader's group and every other member; False when none is left."""
    members = session_members(sid)
    for pid in members:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return bool(members)


def _reap(pid: int) -> None:
    """Collect the session leader if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass

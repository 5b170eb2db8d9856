"""Process identity that survives pid reuse (cluster/processes.py), read from /proc about this
test's own process: nothing is started or signalled here. Stopping real sessions:
tests/cluster/platforms/test_local.py."""
from __future__ import annotations

import os
from pathlib import Path

from cluster import processes


def no_such_pid() -> int:
    """A pid no process can have: pids stay below the kernel's pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def session_of(pid: int, default: int) -> int:
    try:
        return os.getsid(pid)
    except ProcessLookupError:  # ended since it was listed
        return default


def test_a_live_process_has_one_start_time_and_a_gone_one_none():
    mine = processes.start_time(os.getpid())
    assert mine is not None and mine.isdigit()
    assert processes.start_time(os.getpid()) == mine
    assert processes.start_time(no_such_pid()) is None


def test_a_process_is_ours_only_while_its_recorded_start_time_matches():
    pid = os.getpid()
    recorded = processes.start_time(pid)
    assert processes.is_ours(pid, recorded)
    assert not processes.is_ours(pid, str(int(recorded) + 1))  # a recycled pid: another's
    assert not processes.is_ours(pid, None)
    assert not processes.is_ours(None, recorded) and not processes.is_ours(0, recorded)
    assert not processes.is_ours(no_such_pid(), recorded)


def test_a_sessions_members_are_its_live_processes():
    sid = os.getsid(0)
    members = processes.session_members(sid)
    assert os.getpid() in members
    assert all(session_of(pid, default=sid) == sid for pid in members)
    assert processes.session_alive(sid)


def test_a_session_nobody_is_in_is_not_alive():
    assert processes.session_members(no_such_pid()) == []
    assert not processes.session_alive(no_such_pid())


def test_no_session_leader_has_an_environment_value_nobody_set():
    assert processes.find_session_leader("RAYDEPLOY_APP_ID", f"never-set-{os.getpid()}") is None

"""The host-side helper (cluster/platforms/ssh/remote_helper.py) re-implements what
cluster/processes.py does here, as it runs on hosts with the standard library only and
nothing installed: the two must agree. Both read the same real processes of this machine."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from cluster import processes
from cluster.platforms.ssh import remote_helper

# a session leader with a child in a process group of its own (as Ray's workers are)
FAMILY = ("import os, subprocess, sys, time; "
          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
          "process_group=0); print('ready', flush=True); time.sleep(60)")


@pytest.fixture
def family():
    mark = uuid.uuid4().hex
    leader = subprocess.Popen([sys.executable, "-c", FAMILY], start_new_session=True,
                              stdout=subprocess.PIPE, text=True,
                              env={"PATH": "/usr/bin:/bin", "AGREEMENT_MARK": mark})
    try:
        assert leader.stdout.readline().strip() == "ready"
        yield leader, mark
    finally:
        processes.stop_session(leader.pid, grace_seconds=1)
        leader.wait()


def test_the_helper_and_this_machine_see_the_same_session(family):
    leader, _ = family
    members = processes.session_members(leader.pid)
    assert len(members) == 2 and leader.pid in members
    assert sorted(remote_helper.members(leader.pid)) == sorted(members)
    for pid in members:
        assert remote_helper.started(pid) == processes.start_time(pid) is not None


def test_the_helper_and_this_machine_find_the_same_leader_and_ownership(family):
    leader, mark = family
    assert processes.find_session_leader("AGREEMENT_MARK", mark) == leader.pid
    found = remote_helper.find({"key": "AGREEMENT_MARK", "value": mark})["found"]
    assert found == {"pid": leader.pid, "start": processes.start_time(leader.pid)}
    record = {"pid": leader.pid, "start": found["start"]}
    assert remote_helper.owned(record) and processes.is_ours(leader.pid, found["start"])
    stale = {"pid": leader.pid, "start": "1"}  # the pid taken by another process since
    assert not remote_helper.owned(stale) and not processes.is_ours(leader.pid, "1")


def test_a_session_that_ended_is_gone_for_both():
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()
    assert processes.session_members(done.pid) == remote_helper.members(done.pid) == []
    assert processes.start_time(done.pid) is None and remote_helper.started(done.pid) is None


def test_the_helper_reads_a_directorys_files_with_a_suffix_and_nothing_else(tmp_path):
    (tmp_path / "a.json").write_text('{"a": 1}')
    (tmp_path / "b.txt").write_text("no")
    (tmp_path / "c.json").mkdir()  # a directory, not a file
    found = remote_helper.files({"dir": str(tmp_path), "suffix": ".json"})["files"]
    assert found == {"a.json": '{"a": 1}'}
    assert remote_helper.files({"dir": str(tmp_path / "none"), "suffix": ".json"}) == {"files": {}}

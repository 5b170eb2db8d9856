"""The host-side helper (cluster/platforms/ssh/remote_helper.py) re-implements what
cluster/processes.py does here, as it runs on hosts with the standard library only and
nothing installed: the two must agree. Both read the same real processes of this machine."""
from __future__ import annotations

import json
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


# run by the helper: the command lines of the processes above it (the helper, and what
# started it), and the secret it was given
ANCESTORS = ("import os; pid = os.getppid(); seen = []\n"
             "while pid > 1:\n"
             "    seen.append(open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace'))\n"
             "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
             "print(os.environ['RAY_AUTH_TOKEN'], any('s3cret' in c for c in seen))")


def test_a_request_and_its_secrets_reach_the_helper_on_its_input_never_a_command_line():
    """As the runner calls it over SSH (``sh -c WITH_PYTHON``, the program on stdin), here:
    the command it runs gets the secret, and no process above it has it in its command line."""
    from cluster.platforms.ssh.runner import WITH_PYTHON, helper_input
    request = {"do": "run", "argv": ["python", "-c", ANCESTORS], "timeout": 30, "keep": 4000,
               "env": {"RAY_AUTH_TOKEN": "s3cret"}, "python": ["/nonexistent/python", sys.executable]}
    done = subprocess.run(["sh", "-c", WITH_PYTHON], input=helper_input(request),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["code"], answer["output"].split()) == (0, ["s3cret", "False"])


def test_a_command_the_helper_runs_says_how_it_ended():
    missing = remote_helper.run({"argv": ["/nonexistent/tool"], "timeout": 5, "keep": 4000})
    assert missing["code"] == 127 and "/nonexistent/tool" in missing["output"]
    slow = remote_helper.run({"argv": [sys.executable, "-c", "import time; print('up', flush=True);"
                                                             " time.sleep(30)"],
                              "timeout": 1, "keep": 4000})
    assert (slow["code"], slow["output"].strip()) == (None, "up")

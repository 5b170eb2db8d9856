"""The ssh platform's command runner, against real sshds on lab hosts (key auth only, host keys
made for the lab, checked strictly): commands, long-lived processes that outlive the SSH
session and are stopped only by their record, and one clear line for each way a host fails
(a changed host key, a refused key, no answer)."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

from lab import Lab
from lab.machine import image_in_tmp
from lab.ssh import SSHKeys, add_ssh_host, keygen, replace_host_key
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.lab]

PY = sys.executable
# what the deployer host runs: the runner, one request, its answer as JSON
DRIVER = '''
import json, sys
from cluster.platforms.ssh.runner import Host, Process, SSHError, SSHRunner
known_hosts, identity, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
runner = SSHRunner(known_hosts, identity, connect_timeout=3)
host = Host(**request["host"])
try:
    if request["do"] == "run":
        done = runner.run(host, request["argv"])
        print(json.dumps({"code": done.returncode, "out": done.stdout}))
    elif request["do"] == "start":
        p = runner.start(host, request["argv"], request["log"])
        print(json.dumps({"pid": p.pid, "start": p.start}))
    elif request["do"] in ("alive", "stop"):
        process = Process(host.name, **request["process"])
        print(json.dumps({request["do"]: getattr(runner, request["do"])(host, process)}))
    elif request["do"] == "survey":
        found = runner.survey(host, request["ports"], [Process(host.name, **r) for r in
                                                       request.get("records", [])])
        print(json.dumps({"ray": [[p.pid, p.command] for p in found["ray"]],
                          "taken": found["taken"], "alive": found["alive"]}))
except SSHError as e:
    print(json.dumps({"error": str(e), "kind": type(e).__name__}))
finally:
    runner.close()
'''


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory, lab_ready):
    keys = SSHKeys.make(tmp_path_factory.mktemp("ssh"))
    lab = Lab.create(owner_pid=os.getpid())
    try:
        lab.add_network("ws", "198.18.0.0/24")
        hosts = {name: add_ssh_host(lab, name, keys) for name in ("h1", "h2")}
        hosts["bare"] = add_ssh_host(lab, "bare", keys, without_python=True)
        lab.add_host("deployer", ["ws"], dirs={str(keys.directory): str(keys.directory)},
                     keep=tuple(image_in_tmp()))
        yield lab, keys, hosts
    finally:
        lab.down()


def ask(ssh_lab, host: str, identity=None, **request) -> dict:
    lab, keys, hosts = ssh_lab
    address = hosts[host].address if host in hosts else host  # a name, or an address
    request["host"] = {"name": host, "address": address}
    done = lab.run("deployer", [PY, "-c", DRIVER, str(keys.known_hosts),
                                str(identity or keys.identity), json.dumps(request)],
                   cwd=str(ROOT), timeout=90)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_command_runs_on_the_host_it_names(ssh_lab):
    lab, _, hosts = ssh_lab
    for name in ("h1", "h2"):
        host = hosts[name]
        answer = ask(ssh_lab, name, do="run", argv=["hostname", "-I"])
        assert answer["code"] == 0 and host.address in answer["out"]
    failed = ask(ssh_lab, "h1", do="run", argv=["sh", "-c", "exit 3"])
    assert failed["code"] == 3  # the command's status, not an SSH failure


def test_a_process_outlives_the_session_that_started_it_and_stops_only_by_its_record(ssh_lab):
    lab, _, _ = ssh_lab
    started = ask(ssh_lab, "h1", do="start", argv=["sleep", "600"], log="/tmp/sleep.log")
    record = {"pid": started["pid"], "start": started["start"]}
    # the SSH session that started it is over: it still runs, in a session of its own
    assert ask(ssh_lab, "h1", do="alive", process=record) == {"alive": True}
    sessions = lab.run("h1", ["ps", "-o", "sid=,comm=", "-p", str(record["pid"])]).stdout.split()
    assert sessions == [str(record["pid"]), "sleep"]
    # a record whose start time is not the process's (a reused pid) stops nothing
    other = {**record, "start": str(int(record["start"]) + 1)}
    # a survey answers the same for them (a plan's one round trip to the host)
    assert ask(ssh_lab, "h1", do="survey", ports=[], records=[record, other])["alive"] == \
        [True, False]
    assert ask(ssh_lab, "h1", do="stop", process=other) == {"stop": False}
    assert ask(ssh_lab, "h1", do="alive", process=record) == {"alive": True}
    assert ask(ssh_lab, "h1", do="stop", process=record) == {"stop": True}
    assert ask(ssh_lab, "h1", do="alive", process=record) == {"alive": False}
    assert ask(ssh_lab, "h1", do="survey", ports=[], records=[record])["alive"] == [False]
    state = lab.run("h1", ["ps", "-o", "stat=", "-p", str(record["pid"])]).stdout.strip()
    assert state == "" or state.startswith("Z")  # gone (or ended, waiting for whoever reaps orphans here)


def test_what_is_on_a_host_already_is_seen_with_its_pid_and_command(ssh_lab):
    """Ray processes this tool did not start (and ports taken) are what prerequisites show
    before anything is started there: found, never stopped."""
    lab, _, hosts = ssh_lab
    clean = ask(ssh_lab, "h1", do="survey", ports=[6379, 8265])
    assert clean == {"ray": [], "taken": [], "alive": []}
    # someone's Ray on h1: a raylet (a stand-in named so), and the GCS port taken
    raylet = lab.spawn("h1", ["bash", "-c", "exec -a raylet sleep 600"], note="someone's raylet")
    gcs = lab.spawn("h1", [PY, "-c", f"import socket,time; s=socket.socket(); "
                                     f"s.bind(('{hosts['h1'].address}', 6379)); s.listen(); "
                                     f"time.sleep(600)"], note="someone's gcs port")
    try:
        deadline = time.monotonic() + 10
        while (seen := ask(ssh_lab, "h1", do="survey", ports=[6379, 8265]))["taken"] != [6379]:
            assert time.monotonic() < deadline, seen
        assert seen["ray"] == [[raylet.pid, "raylet 600"]]
        assert ask(ssh_lab, "h2", do="survey", ports=[6379]) == clean  # another host's own
    finally:
        for process in (raylet, gcs):
            process.kill()
            process.wait()


def test_each_way_a_host_fails_is_one_line_naming_it(ssh_lab, tmp_path):
    lab, keys, _ = ssh_lab
    # nothing listens there (a lab address no host has)
    gone = ask(ssh_lab, "198.18.0.250", do="run", argv=["true"])
    assert gone["kind"] == "SSHError" and "198.18.0.250" in gone["error"]
    assert "cannot be reached" in gone["error"]
    # a key the host does not accept
    stranger = keys.directory / "stranger"
    keygen(stranger)
    refused = ask(ssh_lab, "h2", identity=stranger, do="run", argv=["true"])
    assert "h2 (root@" in refused["error"] and "the key was refused" in refused["error"]
    # the host was rebuilt: its key changed, known_hosts holds the old one
    replace_host_key(lab, "h2", keys)
    changed = ask(ssh_lab, "h2", do="run", argv=["true"])
    assert changed["kind"] == "HostKeyMismatch" and "h2 (root@" in changed["error"]
    assert "nothing was run" in changed["error"]
    # a host without Python (the nodes and the runner's helper need it)
    bare = ask(ssh_lab, "bare", do="start", argv=["sleep", "1"], log="/tmp/x.log")
    assert bare["error"] == f"bare ({ssh_lab[2]['bare'].address}) has no python3 that runs: " \
                            f"install Python there (the nodes run on it)"
    for answer in (gone, refused, changed, bare):
        assert "\n" not in answer["error"]

"""The ssh platform, proven in the lab: four hosts that each run their own sshd (key auth,
host keys made for the lab and checked strictly) and ops, the host the deployer runs on.

A deploy to 1 head + 3 worker hosts passes every checkpoint and validation, the Serve app
answers, each node runs on its own host and Prometheus beside the head scrapes them all;
scale-in is gated with its impact and drains; a second cluster aimed at a host that already
runs Ray is stopped by prerequisites naming the host, the pid and the command, before
anything is made; teardown leaves no process on any host. Each way a host fails (no answer,
a refused key, a changed host key, no Python) is one line naming the host, with nothing
started or recorded."""
from __future__ import annotations

import json
import os
import re
import time

import pytest
import yaml

from cluster import processes
from core.timing import TimedOut, poll_until
from lab import Lab
from lab.ssh import keygen, replace_host_key
from tests.ssh_lab import SSHLab

pytestmark = [pytest.mark.integration, pytest.mark.lab]

HOSTS = ["head", "w1", "w2", "w3"]


@pytest.fixture(scope="module")
def onprem(tmp_path_factory, lab_ready):
    """The lab with the cluster deployed on it (the deploy's output kept as ``deployed``)."""
    lab = Lab.create(owner_pid=os.getpid())
    try:
        ssh = SSHLab(lab, tmp_path_factory.mktemp("ssh-platform"))
        for name in HOSTS:
            ssh.add(name)
        made = ssh.config("onprem", HOSTS)
        wheels = ssh.work / "wheels"  # the hosts have no network: pip is offline there anyway
        wheels.mkdir()
        (wheels / "WHEELS.txt").write_text("the hosts' wheelhouse\n")
        made["ssh"]["wheelhouse"] = str(wheels)
        made["monitoring"] = {"enabled": True, "scrape_interval_seconds": 2}
        config = ssh.write(made)
        ssh.deployed = ssh.cli("--deploy", "--auto-approve", config=config)
        ssh.config_path = config
        yield ssh
    finally:
        lab.down()


def test_a_deploy_to_four_hosts_passes_every_checkpoint_and_serves(onprem):
    out = onprem.deployed.stdout
    assert onprem.deployed.returncode == 0, out + onprem.deployed.stderr
    assert "[8/8] validation" in out and "FAIL" not in out
    assert "PASS  nodes_alive            4 of 4 nodes ALIVE" in out
    assert "PASS  ray_job" in out
    assert re.search(r"PASS  monitoring +prometheus at http://198\.18\.[0-9.]+:9090 scrapes "
                     r"every Ray node", out), out
    facts = onprem.facts(onprem.config_path)
    assert facts["run"] == "succeeded"
    placed = {name: app["host"] for name, app in facts["apps"].items()}
    assert placed == {"onprem-head": "head", "onprem-worker-1": "w1", "onprem-worker-2": "w2",
                      "onprem-worker-3": "w3"}
    assert facts["alive"] == sorted(onprem.address(h) for h in HOSTS)
    # each host runs its own node: Ray's processes in one session, the one recorded; the
    # head host Prometheus beside it, in a session of its own (once the validation job's
    # driver, and the watcher Ray starts beside it, both in sessions of their own, ended
    # by themselves: the check takes the driver's answer without waiting for its exit)
    for host in HOSTS:
        want = 2 if host == "head" else 1
        try:
            poll_until(lambda h=host, n=want: len({s for _, s, _ in onprem.processes(h)}) == n,
                       15, f"{host} to run its node's session only", interval=0.2)
        except TimedOut:
            pytest.fail(f"{host} runs {onprem.processes(host)}")
    assert any("prometheus" in c.split()[0] for _, _, c in onprem.processes("head"))
    # Ray's Grafana dashboards, written on the head host, copied to the deployer's state dir
    grafana = onprem.lab.run("ops", ["ls", str(onprem.work / "onprem" / "grafana")])
    assert "default_grafana_dashboard.json" in grafana.stdout.split(), grafana.stdout + grafana.stderr
    # the project and the wheelhouse were copied to every host; pip there used only the latter
    for host in HOSTS:
        listed = onprem.lab.run(host, ["ls", "/root/.raydeploy/onprem/wheelhouse",
                                       "/root/.raydeploy/onprem/project/cluster/launcher.py"])
        assert "WHEELS.txt" in listed.stdout, (host, listed.stdout + listed.stderr)
    answer = onprem.python("import requests, sys; r = requests.get(sys.argv[1], timeout=10); "
                           "print(r.status_code, r.text)",
                           f"http://{onprem.address('head')}:8000/hello")
    assert answer.stdout.startswith("200"), answer.stdout + answer.stderr


def test_another_clusters_deploy_to_a_host_running_ray_is_stopped_before_anything_is_made(
        onprem):
    """Prerequisites name the host, the pid and the command of the Ray it did not start."""
    other = onprem.write(onprem.config("other", ["head"], workers=0))
    stopped = onprem.cli("--deploy", "--auto-approve", config=other, timeout=120)
    assert stopped.returncode != 0
    said = [line.strip() for line in stopped.stdout.splitlines()
            if "a Ray this tool did not start" in line]
    head = [p for p in onprem.processes("head") if "ray.scripts.scripts start" in p[2]]
    assert len(said) == 1 and said[0].startswith(f"head: a Ray this tool did not start runs "
                                                 f"there (pid {head[0][0]}: "), said
    assert "ray.scripts.scripts start --block" in said[0]
    assert "head: port(s) 6379, 8000, 8265, 10001 taken" in stopped.stdout
    assert onprem.facts(other)["apps"] == {}  # nothing made, nothing recorded


def test_scale_in_is_gated_with_its_impact_then_drains_the_node_and_leaves_its_host_empty(
        onprem):
    placed = {name: app["host"] for name, app in onprem.facts(onprem.config_path)["apps"].items()}
    config = yaml.safe_load(onprem.config_path.read_text())
    config["workers"]["count"] = 2
    onprem.write(config)
    planned = onprem.cli("--deploy", "--no-wait", config=onprem.config_path)
    assert planned.returncode == 3, planned.stdout + planned.stderr
    assert "worker_launch needs DESTRUCTIVE approval" in planned.stdout
    removed = re.search(r"delete worker onprem-worker-(\d) \(drain=True, host=(\w+)\)",
                        planned.stdout)
    assert removed and "displaces" in planned.stdout, planned.stdout  # which node, what it breaks
    gone = placed[f"onprem-worker-{removed.group(1)}"]
    assert removed.group(2) == gone  # the approver is told which machine empties
    approved = onprem.cli("approve", "worker_launch", "--acknowledge-risks",
                          config=onprem.config_path)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    resumed = onprem.cli("--resume", config=onprem.config_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    facts = onprem.facts(onprem.config_path)
    kept = [h for h in HOSTS if h != gone]
    assert sorted(a["host"] for a in facts["apps"].values()) == sorted(kept)
    assert facts["alive"] == sorted(onprem.address(h) for h in kept)
    assert onprem.processes(gone) == []



# in ops: the API (in-process) asked to stop the Ray found on a host, then approved
CLEANUP = """
import json, sys, time
from api_server import create_app
from api_server.settings import Settings
from cluster.config import load_config
client = create_app(Settings(status_cache_seconds=0), load_config(sys.argv[1])).test_client()
seen = client.get("/api/v1/hosts/foreign-ray").get_json()
started = client.post("/api/v1/hosts/cleanup", json={"host": sys.argv[2]})
pending = started.get_json()["pending"]
approved = client.post("/api/v1/approvals/host_cleanup", json={
    "acknowledge_risks": True, "run_id": pending["run_id"],
    "plan_fingerprint": pending["plan_fingerprint"]})
deadline = time.monotonic() + 60
while (run := client.get(f"/api/v1/deployments/{pending['run_id']}").get_json())["status"] \
        not in ("succeeded", "failed") and time.monotonic() < deadline:
    time.sleep(0.3)
audit = [e["action"] + " " + e["result"] for e in client.get("/api/v1/audit").get_json()["events"]]
print(json.dumps({"seen": seen, "status": started.status_code, "pending": pending,
                  "approved": approved.status_code, "run": run["status"], "audit": audit}))
"""


def test_ray_this_tool_did_not_start_is_stopped_only_with_an_approval_and_only_what_was_shown(
        onprem):
    """Someone's session on w1: a shell, a Ray process in it, and another process. The
    cleanup plan shows the Ray process (host, pid, command); approved, it stops that one
    process: the shell and the other process of the session, and the cluster, stay."""
    someone = onprem.lab.spawn("w1", ["bash", "-c", "(exec -a raylet sleep 600) & sleep 600 & wait"],
                               note="someone's session with a Ray process")
    try:
        deadline = time.monotonic() + 10
        # three members, one of them renamed (the subshell counts before its exec)
        while len(members := [p for p in onprem.processes("w1") if p[1] == someone.pid]) < 3 \
                or not any(command.startswith("raylet") for _, _, command in members):
            assert time.monotonic() < deadline, onprem.processes("w1")
            time.sleep(0.1)
        raylet = next(pid for pid, _, command in members if command.startswith("raylet"))
        done = onprem.python(CLEANUP, str(onprem.config_path), "w1", timeout=180)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["seen"]["foreign_ray"] == [{"host": "w1", "session": someone.pid, "processes": [
            {"pid": raylet, "command": "raylet 600"}]}]
        assert answer["status"] == 202 and answer["pending"]["gate"]["destructive"]
        [action] = answer["pending"]["plan"]["actions"]
        assert action["details"]["host"] == "w1" and action["details"]["processes"][0][0] == raylet
        assert (answer["approved"], answer["run"]) == (201, "succeeded")
        assert "host.cleanup pending" in answer["audit"]
        left = {pid for pid, session, _ in onprem.processes("w1") if session == someone.pid}
        assert raylet not in left and len(left) == 2  # the shell and its other process
        facts = onprem.facts(onprem.config_path)  # the cluster untouched: its 3 nodes ALIVE
        assert len(facts["alive"]) == 3 and facts["alive"] == sorted(
            a["ip"] for a in facts["apps"].values())
    finally:
        processes.stop_session(someone.pid, grace_seconds=1)
        someone.wait()


def test_the_cli_shows_the_processes_it_would_stop_and_stops_them_once_approved(onprem):
    someone = onprem.lab.spawn("w2", ["bash", "-c", "exec -a raylet sleep 600"],
                               note="someone's raylet")
    try:
        shown = onprem.cli("cleanup-hosts", "--host", "w2", "--no-wait",
                           config=onprem.config_path)
        assert shown.returncode == 3, shown.stdout + shown.stderr
        assert "host_cleanup needs DESTRUCTIVE approval" in shown.stdout
        assert f"{someone.pid}" in shown.stdout and "raylet 600" in shown.stdout
        assert onprem.processes("w2")  # nothing stopped without the approval
        approved = onprem.cli("approve", "host_cleanup", "--acknowledge-risks",
                              config=onprem.config_path)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        resumed = onprem.cli("--resume", config=onprem.config_path)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        deadline = time.monotonic() + 10
        while someone.poll() is None:
            assert time.monotonic() < deadline, "the raylet still runs"
            time.sleep(0.1)
        audit = onprem.cli("audit", "--action", "host.cleanup", config=onprem.config_path)
        assert "host.cleanup" in audit.stdout, audit.stdout + audit.stderr
    finally:
        if someone.poll() is None:
            processes.stop_session(someone.pid, grace_seconds=1)
        someone.wait()

def test_teardown_leaves_no_process_on_any_host(onprem):
    down = onprem.cli("--teardown", "--auto-approve", config=onprem.config_path)
    assert down.returncode == 0, down.stdout + down.stderr
    for host in HOSTS:
        assert onprem.processes(host) == [], host
    assert onprem.facts(onprem.config_path)["apps"] == {}


def test_each_way_a_host_fails_is_one_line_naming_it_and_nothing_is_started(
        tmp_path_factory, lab_ready):
    lab = Lab.create(owner_pid=os.getpid())
    try:
        ssh = SSHLab(lab, tmp_path_factory.mktemp("ssh-failures"))
        ssh.add("good")
        stranger = ssh.work / "stranger"
        keygen(stranger)
        ssh.add("refuses", authorized=stranger.with_suffix(".pub"))
        ssh.add("rebuilt")
        replace_host_key(lab, "rebuilt", ssh.keys)
        ssh.add("bare", without_python=True)
        config = ssh.write(ssh.config("broken", ["good", "198.18.0.250", "refuses", "rebuilt",
                                                 "bare"]))
        failed = ssh.cli("--deploy", "--auto-approve", config=config, timeout=180)
        assert failed.returncode != 0
        text = failed.stdout + failed.stderr
        lines = {host: [line for line in failed.stdout.splitlines() if f"{host} (" in line]
                 for host in ("198.18.0.250", "refuses", "rebuilt", "bare")}
        assert all(len(found) == 1 for found in lines.values()), text  # one line each
        assert "cannot be reached" in lines["198.18.0.250"][0]
        assert "the key was refused" in lines["refuses"][0]
        assert "host key is not the one" in lines["rebuilt"][0]
        assert "nothing was run" in lines["rebuilt"][0]
        assert "has no python3" in lines["bare"][0]
        assert "Traceback" not in text
        assert ssh.facts(config)["apps"] == {}
        for host in ("good", "refuses", "rebuilt", "bare"):
            assert ssh.processes(host) == [], host
    finally:
        lab.down()


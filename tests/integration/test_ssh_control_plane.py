"""The product's main use, on the ssh platform, in the lab: a CI runner that cannot reach the
hosts deploys through a control plane that can, and an approver approves over REST.

    ci   (network ``ci`` only)   deploy_master.py --server http://ops:8470 ...
    ops  (``ci`` and ``lan``)    python -m api_server --control-plane (the store, the runs)
    head, w1 (``lan``)           the cluster's hosts, each with its own sshd

The runner's deploy stops at the gate with exit 3; an approver's approval (from the runner's
network, over REST) continues the run on the server; the runner's next deploy follows it to
the end, validation passing; teardown through the server leaves no process on the hosts."""
from __future__ import annotations

import json
import os

import pytest

from lab import Lab
from tests.conftest import ROOT
from tests.ssh_lab import ENV, PY, SSHLab

pytestmark = [pytest.mark.integration, pytest.mark.lab]

PORT = 8470
TOKENS = {"ci": ("operator", "ci-token-0123456789abcdef"),
          "alice": ("approver", "alice-token-0123456789ab"),
          "bob": ("operator+approver", "bob-token-0123456789abcd")}
# in ops: until the control plane answers
READY = """
import sys, time, requests
deadline = time.monotonic() + 60
while True:
    try:
        if requests.get(sys.argv[1] + "/health", timeout=2).ok:
            break
    except requests.RequestException:
        pass
    if time.monotonic() > deadline:
        raise SystemExit("the control plane did not answer")
    time.sleep(0.2)
"""
# on the runner: the cluster's nodes as the control plane reports them
NODES = """
import json, sys, requests
answer = requests.get(sys.argv[1] + "/api/v1/resources/nodes", timeout=30,
                      headers={"Authorization": "Bearer " + sys.argv[2]}).json()
print(json.dumps(sorted([n["platform_app_name"], n["node_ip"], n["alive"]]
                        for n in answer["nodes"])))
"""
REACH = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 22), timeout=3).close()
    print("reached")
except OSError as e:
    print("unreachable", type(e).__name__)
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, lab_ready):
    lab = Lab.create(owner_pid=os.getpid())
    try:
        ssh = SSHLab(lab, tmp_path_factory.mktemp("ssh-control-plane"), runner=True)
        for name in ("head", "w1"):
            ssh.add(name)
        ssh.config_path = ssh.write(ssh.config("fleet", ["head", "w1"],
                                               approvals={"required": ["worker_launch"]}))
        ssh.url = f"http://{lab.host('ops').addresses['ci']}:{PORT}"
        log = open(ssh.work / "control-plane.log", "w")  # noqa: SIM115 - lives with the server
        ssh.server_log = ssh.work / "control-plane.log"
        lab.spawn("ops", [PY, "-m", "api_server", "--config", str(ssh.config_path), "--host",
                          lab.host("ops").addresses["ci"], "--port", str(PORT),
                          "--control-plane"], cwd=str(ROOT), stdout=log,
                  env={**ENV, "RAYDEPLOY_API_TOKENS": ",".join(
                      f"{who}:{roles}:{token}" for who, (roles, token) in TOKENS.items())},
                  note="the control plane")
        ready = ssh.python(READY, ssh.url)
        assert ready.returncode == 0, ready.stderr + ssh.server_log.read_text()
        yield ssh
    finally:
        lab.down()


def on_ci(fleet, *args: str, who: str = "ci", timeout: float = 600):
    """deploy_master.py on the CI runner, through the control plane, as ``who``."""
    return fleet.cli("--server", fleet.url, *args, config=fleet.config_path, host="ci",
                     env={"RAYDEPLOY_TOKEN": TOKENS[who][1]}, timeout=timeout)


def test_the_runner_reaches_the_control_plane_and_none_of_the_hosts(fleet):
    for host in ("head", "w1"):
        reached = fleet.lab.run("ci", [PY, "-c", REACH, fleet.address(host)])
        assert reached.stdout.startswith("unreachable"), (host, reached.stdout)
    status = on_ci(fleet, "--status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_a_deploy_from_ci_waits_for_an_approval_over_rest_then_ends_on_the_hosts(fleet):
    stopped = on_ci(fleet, "--deploy", "--no-wait")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "worker_launch needs" in stopped.stdout and "--server" in stopped.stdout
    refused = on_ci(fleet, "approve", "worker_launch")  # the runner only operates
    assert refused.returncode == 2 and "approver" in refused.stderr, refused.stderr
    approved = on_ci(fleet, "approve", "worker_launch", "--reason", "first deploy", who="alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "approved worker_launch" in approved.stdout and "by alice" in approved.stdout
    followed = on_ci(fleet, "--deploy")  # the workflow again: it follows the run to its end
    out = followed.stdout + followed.stderr
    assert followed.returncode == 0, out + fleet.server_log.read_text()[-3000:]
    assert "[8/8] validation" in out and "PASS  nodes_alive            2 of 2 nodes ALIVE" in out
    nodes = fleet.lab.run("ci", [PY, "-c", NODES, fleet.url, TOKENS["ci"][1]])
    assert nodes.returncode == 0, nodes.stderr
    assert json.loads(nodes.stdout) == sorted(
        [["fleet-head", fleet.address("head"), True], ["fleet-worker-1", fleet.address("w1"), True]])
    audit = on_ci(fleet, "audit", who="bob")
    assert "approval.approve" in audit.stdout and "alice" in audit.stdout, audit.stdout


def test_teardown_through_the_control_plane_leaves_no_process_on_the_hosts(fleet):
    down = on_ci(fleet, "--teardown", "--auto-approve", who="bob")
    assert down.returncode == 0, down.stdout + down.stderr
    for host in ("head", "w1"):
        assert fleet.processes(host) == [], host

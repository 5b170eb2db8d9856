"""The control plane as a server (``python -m api_server --control-plane``) and the CLI as
its client (``deploy_master.py --server URL``), on this machine: the same output, gates and
exit codes as embedded mode; a gate waits on the server, an approval from anyone continues
the same run, the re-run attaches to it; a control plane killed mid-run continues the run
when it comes back; bad input (tokens, another cluster, no server) is one clear line."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import pexpect
import pytest
import requests

from tests.conftest import ROOT, base_config, clean_env, cli, write_config
from tests.control_plane_fixtures import TOKENS

pytestmark = pytest.mark.integration

def test_a_deploy_through_the_control_plane_prints_what_an_embedded_one_does(plane):
    out = plane.deploy_output
    assert f"(control plane {plane.server.url}" in out
    for n, name in enumerate(("prerequisites", "project_setup", "job_creation", "head_launch",
                              "worker_launch", "serve_deploy", "monitoring", "validation"), 1):
        assert f"[{n}/8] {name}" in out
    assert "PASS  nodes_alive            2 of 2 nodes ALIVE" in out  # the run's own messages
    assert "succeeded in" in out and "app hello    : http://127.0.0." in out
    # the cluster's own management API forwards to the control plane (it holds nothing)
    proxy = next(line.split(": ", 1)[1].strip() for line in out.splitlines()
                 if line.strip().startswith("management API"))
    health = requests.get(proxy.split()[0] + "/health", timeout=10).json()
    assert health["control_plane"] is True and health["cluster_name"] == "rdplane"
    # the store is the control plane's: the CLI in embedded mode is told where to go
    embedded = cli("--status", config=plane.config)
    assert embedded.returncode == 2 and "--server" in embedded.stderr
    assert "Traceback" not in embedded.stderr


def test_a_gate_waits_on_the_server_an_approval_continues_the_run_the_rerun_attaches(plane):
    stop = plane.cli("--deploy", "--no-wait", workers=0)
    assert stop.returncode == 3, stop.stdout + stop.stderr
    assert "worker_launch needs DESTRUCTIVE approval" in stop.stdout
    assert "--server" in stop.stdout and "approve worker_launch --acknowledge-risks" in stop.stdout
    run_id = stop.stdout.split()[1].rstrip(":")
    status = plane.cli("--status")
    assert "awaiting_approval" in status.stdout and "awaiting approval: worker_launch" in status.stdout
    refused = plane.cli("approve", "worker_launch", "--acknowledge-risks")  # ci: an operator
    assert refused.returncode == 2 and "approver" in refused.stderr
    # the workflow runs again (no terminal, no --no-wait): it follows the waiting run
    follower = plane.spawn("--deploy", workers=0)
    try:
        time.sleep(2)
        approved = plane.cli("approve", "worker_launch", "--acknowledge-risks", "--reason",
                             "scale in", token="alice")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert "approved worker_launch" in approved.stdout and "by alice" in approved.stdout
        out, _ = follower.communicate(timeout=300)
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
    assert follower.returncode == 0, out
    assert f"run {run_id} (deploy" in out and "following it" in out
    assert "approved worker_launch" in out  # what the follower saw happen on the server
    assert plane.workers() == []
    back = plane.cli("--deploy", workers=1, timeout=300)  # adding one needs no approval
    assert back.returncode == 0, back.stdout + back.stderr
    assert len(plane.workers()) == 1


def test_the_gate_prompts_on_a_terminal_and_approves_through_the_server(plane):
    env = clean_env(RAYDEPLOY_TOKEN=TOKENS["bob"][1], RAY_NUM_WORKERS="0")
    child = pexpect.spawn(sys.executable, ["deploy_master.py", "--config", str(plane.config),
                                           "--server", plane.server.url, "--deploy"],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=180)
    try:
        child.expect(r"Type the checkpoint name \(worker_launch\) to approve")
        child.sendline("worker_launch")
        child.expect("Reason")
        child.sendline("at the prompt, remotely")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
    finally:
        child.close(force=True)
    assert plane.workers() == []
    answer = requests.get(f"{plane.server.url}/api/v1/approvals?state=approved", timeout=30,
                          headers={"Authorization": f"Bearer {TOKENS['bob'][1]}"}).json()
    newest = answer["approvals"][0]
    assert (newest["approver"], newest["reason"]) == ("bob", "at the prompt, remotely")
    back = plane.cli("--deploy", workers=1, timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr


def test_a_control_plane_killed_mid_run_continues_the_run_when_it_is_back(plane):
    plane.server.stop()
    plane.start(RAYDEPLOY_TEST_HOOKS="1", RAYDEPLOY_CRASH_AT="worker_launch:apply-mid")
    follower = plane.spawn("--deploy", workers=2)  # adds a worker: the server dies mid-apply
    try:
        deadline = time.monotonic() + 120
        while plane.server.proc.poll() is None:
            assert time.monotonic() < deadline, "the control plane did not reach apply-mid"
            time.sleep(0.2)
        assert plane.server.proc.returncode == 137  # as kill -9
        plane.server.stop()
        plane.start()  # the platform restarts it: it continues the run on its own
        out, _ = follower.communicate(timeout=300)
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
    assert follower.returncode == 0, out + plane.server.output()
    assert len(plane.workers()) == 2  # the worker started before the kill, and no other
    runs = requests.get(f"{plane.server.url}/api/v1/deployments?limit=1", timeout=30, headers={
        "Authorization": f"Bearer {TOKENS['ci'][1]}"}).json()["deployments"]
    assert runs[0]["status"] == "succeeded"
    events = requests.get(f"{plane.server.url}/api/v1/deployments/{runs[0]['id']}/events",
                          params={"follow": "false"}, timeout=30,
                          headers={"Authorization": f"Bearer {TOKENS['ci'][1]}"}).text
    assert "run.interrupted" in events and "run.resumed" in events
    back = plane.cli("--deploy", "--auto-approve", workers=1, token="bob", timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr


def test_bad_input_is_one_clear_line(plane, tmp_path):
    wrong = cli("--server", plane.server.url, "--status", config=plane.config,
                env=clean_env(RAYDEPLOY_TOKEN="not-a-token-0123456789"))
    assert wrong.returncode == 2 and "refused the token" in wrong.stderr
    missing = cli("--server", plane.server.url, "--status", config=plane.config)
    assert missing.returncode == 2 and "refused the token" in missing.stderr
    other = write_config(tmp_path / "other.yaml", base_config(tmp_path / "s", name="another"))
    server_log = len(plane.server.output())
    foreign = cli("--server", plane.server.url, "--deploy", config=other,
                  env=clean_env(RAYDEPLOY_TOKEN=TOKENS["ci"][1]))
    assert foreign.returncode == 1 and "cluster names differ" in foreign.stderr
    assert "POST /api/v1/deployments" not in plane.server.output()[server_log:]
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    started = time.monotonic()
    gone = cli("--server", f"http://127.0.0.1:{nobody}", "--server-timeout", "3", "--deploy",
               config=plane.config, env=clean_env(RAYDEPLOY_TOKEN=TOKENS["ci"][1]))
    assert gone.returncode == 1 and "did not answer" in gone.stderr
    assert time.monotonic() - started < 15
    for result in (wrong, missing, foreign, gone):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert TOKENS["ci"][1] not in result.stdout + result.stderr


def test_every_command_acts_through_the_server(plane, tmp_path):
    """plan, reject, --resume, audit, --list-checkpoints, --status --format json and a token
    file, each through --server, with embedded mode's exit codes."""
    plan = plane.cli("plan", workers=0)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "worker_launch" in plan.stdout and "DESTRUCTIVE" in plan.stdout
    listed = plane.cli("--list-checkpoints")
    assert listed.returncode == 0 and "serve_deploy" in listed.stdout
    stop = plane.cli("--deploy", "--no-wait", workers=0)
    assert stop.returncode == 3, stop.stdout + stop.stderr
    run_id = stop.stdout.split()[1].rstrip(":")
    rejected = plane.cli("reject", "worker_launch", "--reason", "not tonight", token="alice")
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    assert "rejected worker_launch" in rejected.stdout
    resumed = plane.cli("--resume", workers=0)
    assert resumed.returncode == 4, resumed.stdout + resumed.stderr  # rejected is final
    assert plane.workers() == ["rdplane-worker-1"]  # nothing was removed
    audit = plane.cli("audit")
    assert audit.returncode == 0 and "not tonight" in audit.stdout and run_id in audit.stdout
    verify = plane.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the token from a file only its owner reads (a token is a password)
    token_file = tmp_path / "token"
    token_file.write_text(TOKENS["ci"][1] + "\n")
    token_file.chmod(0o644)
    loose = plane.cli("--status", "--token-file", str(token_file), token=None)
    assert loose.returncode == 2 and "chmod 600" in loose.stderr
    token_file.chmod(0o600)
    status = plane.cli("--status", "--format", "json", "--token-file", str(token_file), token=None)
    assert status.returncode == 0, status.stdout + status.stderr
    document = json.loads(status.stdout)
    assert document["last_run"]["id"] == run_id and document["last_run"]["status"] == "rejected"
    assert document["usage"]["jobs_address"] == document["endpoints"]["dashboard_url"]
    for result in (plan, stop, rejected, resumed, audit, loose, status):
        assert TOKENS["ci"][1] not in result.stdout + result.stderr
        assert TOKENS["alice"][1] not in result.stdout + result.stderr

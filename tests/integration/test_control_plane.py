"""The control plane as a server (``python -m api_server --control-plane``) and the CLI as
its client (``deploy_master.py --server URL``), on this machine: the same output, gates and
exit codes as embedded mode; a gate waits on the server, an approval from anyone continues
the same run, the re-run attaches to it; a control plane killed mid-run continues the run
when it comes back; bad input (tokens, another cluster, no server) is one clear line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
import requests

from tests.conftest import ROOT, ApiServer, base_config, clean_env, cli, stop_recorded_apps, write_config

pytestmark = pytest.mark.integration

TOKENS = {"ci": ("operator", "ci-token-0123456789abcdef"),
          "alice": ("approver", "alice-token-0123456789ab"),
          "bob": ("operator+approver", "bob-token-0123456789abcd")}


class Plane:
    """A control plane of its own cluster, and the CLI pointed at it."""

    def __init__(self, root: Path):
        self.root = root
        self.state_dir = root / "state"
        self.config = write_config(root / "cluster.yaml", base_config(
            self.state_dir, name="rdplane", workers=1))
        self.env = clean_env(RAYDEPLOY_API_TOKENS=",".join(
            f"{p}:{roles}:{token}" for p, (roles, token) in TOKENS.items()))
        self.server: ApiServer | None = None
        self.start()

    def start(self, **extra_env) -> None:
        port = self.server.port if self.server else None
        self.server = ApiServer(self.config, {**self.env, **extra_env}, "127.0.0.1",
                                "--control-plane", port=port)

    def cli(self, *args, token: str | None = "ci", workers: int | None = None, **kw):
        env = clean_env(**({"RAYDEPLOY_TOKEN": TOKENS[token][1]} if token else {}),
                        **({"RAY_NUM_WORKERS": str(workers)} if workers is not None else {}))
        return cli("--server", self.server.url, *args, config=self.config, env=env, **kw)

    def spawn(self, *args, token: str = "ci", workers: int | None = None) -> subprocess.Popen:
        env = clean_env(RAYDEPLOY_TOKEN=TOKENS[token][1],
                        **({"RAY_NUM_WORKERS": str(workers)} if workers is not None else {}))
        return subprocess.Popen([sys.executable, str(ROOT / "deploy_master.py"), "--config",
                                 str(self.config), "--server", self.server.url, *args],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def workers(self) -> list[str]:
        answer = requests.get(f"{self.server.url}/api/v1/resources/nodes", timeout=30, headers={
            "Authorization": f"Bearer {TOKENS['ci'][1]}"}).json()
        return sorted(n["platform_app_name"] for n in answer["nodes"]
                      if n["node_type"] == "worker" and n["platform_app_name"])


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    root = tmp_path_factory.mktemp("plane")
    plane = Plane(root)
    try:
        result = plane.cli("--deploy", "--auto-approve", token="bob", timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr + plane.server.output()
        plane.deploy_output = result.stdout
        yield plane
    finally:
        if plane.server is not None:
            plane.cli("--teardown", "--auto-approve", token="bob", timeout=120)
            plane.server.stop()
        stop_recorded_apps(plane.state_dir)


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

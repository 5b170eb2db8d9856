"""A real local deploy through the CLI, as a user runs it: deploy, re-run, crash and resume,
approvals (prompt, waiting, --no-wait, plan changes, rejection), lease.

The tests share one cluster (head + 2 workers); the ``cluster`` fixture converges it back
after each test, so they run in any order."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pexpect
import pytest
import requests

from tests.conftest import ROOT, clean_env, os_user, our_ray_processes, spawn_cli

pytestmark = pytest.mark.integration


def test_deploy_brings_up_head_workers_and_app_on_loopback(cluster):
    out = cluster.deploy_output
    for name in ("prerequisites", "project_setup", "job_creation", "head_launch",
                 "worker_launch", "serve_deploy", "monitoring", "validation"):
        assert name in out
    assert "head_launch                done" in out and "worker_launch              done" in out
    nodes = cluster.alive_nodes()
    assert len(nodes) == 3
    assert all(ipaddress.ip_address(n.node_ip).is_loopback for n in nodes)
    assert len({n.node_ip for n in nodes}) == 3  # each node on its own address
    proxy = cluster.manager().serve.proxy_url
    answer = requests.get(f"{proxy}/hello?name=ci", timeout=10)
    assert answer.status_code == 200 and answer.json()["message"] == "hello, ci"
    check = subprocess.run([sys.executable, "-m", "validation", "--format", "json", "--config",
                            str(cluster.config_path)], cwd=ROOT, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)["passed"] is True


def test_ray_token_is_private_and_never_printed(cluster):
    token_file = cluster.state_dir / "ray_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token not in cluster.deploy_output
    events = json.dumps([e.message for e in cluster.store().events.read()]
                        + [e.data for e in cluster.store().events.read()])
    assert token not in events
    for log in (cluster.state_dir / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace")
    # the dashboard really requires it
    url = cluster.manager().inventory.dashboard_url()
    assert requests.get(f"{url}/api/v0/nodes", timeout=5).status_code == 401


def test_redeploy_on_a_healthy_cluster_skips_everything_and_writes_nothing(cluster):
    records = cluster.store().platform_records

    def recorded():
        return records.apps(), [records.runs(j["id"]) for j in records.jobs()]
    before = recorded()
    result = cluster.cli("--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 8 and all("skipped (satisfied)" in line for line in lines[:7])
    assert "validation" in lines[7] and "done" in lines[7]  # it always checks, and says so
    assert "PASS  http:hello" in result.stdout
    assert recorded() == before


def test_a_second_run_is_refused_while_one_holds_the_lease(cluster):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from store import Store;"
         f"Store({str(cluster.state_dir)!r}).leases.acquire_lease('other-run', 'run-busy', 60);"
         "print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cluster.cli("--deploy")
        assert result.returncode == 1
        assert "holds the cluster lease" in result.stderr and "run-busy" in result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_kill_during_worker_launch_then_resume_gives_exactly_the_workers(cluster):
    store = cluster.store()
    proc = spawn_cli("--deploy", config=cluster.config_path,
                     env=clean_env(RAY_NUM_WORKERS="3"), text=False)
    try:
        deadline = time.monotonic() + 60
        while not any(a["name"].endswith("worker-3") and a["pid"] for a in store.platform_records.apps()):
            assert time.monotonic() < deadline
            assert proc.poll() is None, (proc.stdout.read().decode(), store.platform_records.apps())
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the orchestrator only; its node apps live on
        proc.wait()
    assert store.runs.latest_run().status == "running"
    result = cluster.cli("--resume", workers=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.runs.latest_run().status == "succeeded"
    assert cluster.worker_names() == ["rdtest-worker-1", "rdtest-worker-2", "rdtest-worker-3"]
    assert len(cluster.alive_nodes()) == 4
    launchers = [c for c in our_ray_processes(cluster.state_dir) if " start --block" in c]
    assert len(launchers) == 4, launchers  # no duplicate, no orphan node


def test_lowering_workers_is_a_destructive_gate(cluster):
    # 2 -> 1 workers: stops awaiting approval
    result = cluster.cli("--deploy", "--no-wait", workers=1)
    assert result.returncode == 3, result.stdout
    assert "approve worker_launch --acknowledge-risks" in result.stdout
    # the least busy worker goes (the one without a Serve replica), whichever its number
    going = re.search(r"delete worker (rdtest-worker-\d)", result.stdout).group(1)
    staying = [n for n in cluster.worker_names() if n != going]
    run_id = cluster.store().runs.latest_run().id
    # a destructive approval needs the risks acknowledged
    result = cluster.cli("approve", "worker_launch", workers=1)
    assert result.returncode == 2 and "acknowledge" in result.stderr
    # approving a plan other than the awaiting one is refused
    result = cluster.cli("approve", "worker_launch", "--acknowledge-risks",
                         "--fingerprint", "0000000000000000", workers=1)
    assert result.returncode == 1 and "shown plan 0000000000000000" in result.stderr
    assert "the plan awaiting approval there is" in result.stderr
    result = cluster.cli("approve", "worker_launch", "--acknowledge-risks",
                         "--operator", "alice", "--reason", "shrink", workers=1)
    assert result.returncode == 0, result.stderr
    # the plan changes before the resume (now 0 workers): the approval does not cover it
    result = cluster.cli("--resume", "--no-wait", workers=0)
    assert result.returncode == 3, result.stdout
    assert "earlier plan" in result.stdout
    assert len(cluster.worker_names()) == 2  # nothing removed
    # a rejection ends the run, saying who and why
    result = cluster.cli("reject", "worker_launch", "--operator", "bob",
                         "--reason", "keep capacity", workers=0)
    assert result.returncode == 0 and "ended as rejected" in result.stdout
    result = cluster.cli("--resume", workers=0)
    assert result.returncode == 4
    assert "bob" in result.stderr and "keep capacity" in result.stderr
    run = cluster.store().runs.get_run(run_id)
    assert run.status == "rejected" and "(bob): keep capacity" in run.error
    # a fresh run with an approval goes through: drain, then stop
    assert cluster.cli("--deploy", "--no-wait", workers=1).returncode == 3
    assert cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=1).returncode == 0
    result = cluster.cli("--resume", workers=1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"draining and removing rdtest-worker-\d", result.stdout)
    assert len(cluster.worker_names()) == 1 and cluster.worker_names()[0] in staying + [going]
    assert len(cluster.alive_nodes()) == 2


def test_without_a_tty_the_run_waits_for_an_approval_given_elsewhere(cluster):
    proc = spawn_cli("--deploy", config=cluster.config_path,
                     env=clean_env(RAY_NUM_WORKERS="1"))
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "waiting for an approval" in line:
                break
        command = next(proc.stdout).strip()
        assert command.endswith("approve worker_launch --acknowledge-risks"), seen
        approve = cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=1)
        assert approve.returncode == 0
        rest = proc.stdout.read()
        assert proc.wait(120) == 0, rest
        assert "approved by" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(cluster.worker_names()) == 1
    assert cluster.cli("--deploy", workers=2).returncode == 0  # growing needs no approval
    assert len(cluster.worker_names()) == 2


@contextlib.contextmanager
def tty(cluster, *args, workers):
    """deploy_master.py on a real pseudo-terminal; killed if the test fails midway."""
    env = clean_env(RAY_NUM_WORKERS=str(workers))
    child = pexpect.spawn(sys.executable, ["deploy_master.py", "--config",
                                           str(cluster.config_path), *args],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=120)
    try:
        yield child
    finally:
        child.close(force=True)


def test_interactive_prompt_declined_rejects_the_run(cluster):
    with tty(cluster, "--deploy", workers=1) as child:
        child.expect(r"delete worker rdtest-worker-\d")
        child.expect(r"Type the checkpoint name \(worker_launch\) to approve")
        child.sendline("worker")  # not the name: no approval
        child.expect("Reason")
        child.sendline("not now")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 4
        assert "rejected" in child.before
    assert len(cluster.worker_names()) == 2


def test_interactive_prompt_approves_when_the_name_is_typed(cluster):
    with tty(cluster, "--deploy", "--operator", "erin", workers=1) as child:
        child.expect(r"Type the checkpoint name \(worker_launch\) to approve")
        child.sendline("worker_launch")
        child.expect("Reason")
        child.sendline("")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
    record = cluster.store().approvals.decisions("worker_launch")[0]
    # the OS user approved; the --operator name is kept beside it, never instead of it
    assert (record.approver, record.claimed_by) == (os_user(), "erin")
    assert (record.source, record.acknowledge_risks) == ("cli", True)
    assert len(cluster.worker_names()) == 1

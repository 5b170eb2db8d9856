"""A real local deploy through the CLI, as a user runs it: deploy, re-run, crash and resume,
approvals (prompt, waiting, --no-wait, plan changes, expiry, rejection), lease, teardown.

The tests share one cluster and run in file order; each leaves it at head + 2 workers
(tests/integration/test_zz_teardown.py tears it down last)."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pexpect
import requests

from tests.conftest import ROOT, clean_env, our_ray_processes, spawn_cli, write_config


def worker_names(cluster):
    return [a.name for a in cluster.manager().worker_apps()]


def alive_nodes(cluster):
    return [n for n in cluster.manager().nodes() if n["alive"]]


def test_deploy_brings_up_head_workers_and_app_on_loopback(live_cluster):
    out = live_cluster.deploy_output
    for name in ("prerequisites", "project_setup", "job_creation", "head_launch",
                 "worker_launch", "serve_deploy", "validation"):
        assert name in out
    assert "head_launch                done" in out and "worker_launch              done" in out
    nodes = alive_nodes(live_cluster)
    assert len(nodes) == 3
    assert all(ipaddress.ip_address(n["node_ip"]).is_loopback for n in nodes)
    assert len({n["node_ip"] for n in nodes}) == 3  # each node on its own address
    proxy = live_cluster.manager().serve.proxy_url
    answer = requests.get(f"{proxy}/hello?name=ci", timeout=10)
    assert answer.status_code == 200 and answer.json()["message"] == "hello, ci"
    check = subprocess.run([sys.executable, "-m", "validation", "--format", "json", "--config",
                            str(live_cluster.config_path)], cwd=ROOT, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)["passed"] is True


def test_ray_token_is_private_and_never_printed(live_cluster):
    token_file = live_cluster.state_dir / "ray_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token not in live_cluster.deploy_output
    events = json.dumps(live_cluster.store().events())
    assert token not in events
    for log in (live_cluster.state_dir / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace")
    # the dashboard really requires it
    url = live_cluster.manager().dashboard_url()
    assert requests.get(f"{url}/api/v0/nodes", timeout=5).status_code == 401


def test_redeploy_on_a_healthy_cluster_skips_everything_and_writes_nothing(live_cluster):
    store = live_cluster.store()
    before = (store.platform_apps(), [store.job_runs(j["id"]) for j in store.platform_jobs()])
    result = live_cluster.cli("--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 7 and all("skipped (satisfied)" in line for line in lines)
    after = (store.platform_apps(), [store.job_runs(j["id"]) for j in store.platform_jobs()])
    assert after == before


def test_a_second_run_is_refused_while_one_holds_the_lease(live_cluster):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from store import Store;"
         f"Store({str(live_cluster.state_dir)!r}).acquire_lease('other-run', 'run-busy', 60);"
         "print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = live_cluster.cli("--deploy")
        assert result.returncode == 1
        assert "holds the cluster lease" in result.stderr and "run-busy" in result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_kill_during_worker_launch_then_resume_gives_exactly_the_workers(live_cluster):
    store = live_cluster.store()
    proc = spawn_cli("--deploy", config=live_cluster.config_path,
                     env=clean_env(RAY_NUM_WORKERS="3"), text=False)
    try:
        deadline = time.monotonic() + 60
        while not any(a["name"].endswith("worker-3") and a["pid"] for a in store.platform_apps()):
            assert time.monotonic() < deadline
            assert proc.poll() is None, (proc.stdout.read().decode(), store.platform_apps())
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the orchestrator only; its node apps live on
        proc.wait()
    assert store.get_run(store.list_runs(limit=1)[0]["id"])["status"] == "running"
    result = live_cluster.cli("--resume", workers=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.list_runs(limit=1)[0]["status"] == "succeeded"
    assert worker_names(live_cluster) == ["rdtest-worker-1", "rdtest-worker-2", "rdtest-worker-3"]
    assert len(alive_nodes(live_cluster)) == 4
    launchers = [c for c in our_ray_processes(live_cluster.state_dir) if " start --block" in c]
    assert len(launchers) == 4, launchers  # no duplicate, no orphan node


def test_lowering_workers_is_a_destructive_gate(live_cluster):
    # 3 -> 2 workers: stops awaiting approval
    result = live_cluster.cli("--deploy", "--no-wait", workers=2)
    assert result.returncode == 3, result.stdout
    assert "approve worker_launch --acknowledge-risks" in result.stdout
    assert "delete worker rdtest-worker-3" in result.stdout
    run_id = live_cluster.store().list_runs(limit=1)[0]["id"]
    # a destructive approval needs the risks acknowledged
    result = live_cluster.cli("approve", "worker_launch", workers=2)
    assert result.returncode == 2 and "acknowledge" in result.stderr
    # approving a plan other than the awaiting one is refused
    result = live_cluster.cli("approve", "worker_launch", "--acknowledge-risks",
                              "--fingerprint", "0000000000000000", workers=2)
    assert result.returncode == 1 and "not the plan awaiting approval" in result.stderr
    result = live_cluster.cli("approve", "worker_launch", "--acknowledge-risks",
                              "--operator", "alice", "--reason", "shrink", workers=2)
    assert result.returncode == 0, result.stderr
    # the plan changes before the resume (now 1 worker): the approval does not cover it
    result = live_cluster.cli("--resume", "--no-wait", workers=1)
    assert result.returncode == 3, result.stdout
    assert "earlier plan" in result.stdout
    assert len(worker_names(live_cluster)) == 3  # nothing removed
    # a rejection ends the run, saying who and why
    result = live_cluster.cli("reject", "worker_launch", "--operator", "bob",
                              "--reason", "keep capacity", workers=1)
    assert result.returncode == 0 and "ended as rejected" in result.stdout
    result = live_cluster.cli("--resume", workers=1)
    assert result.returncode == 4
    assert "bob" in result.stderr and "keep capacity" in result.stderr
    run = live_cluster.store().get_run(run_id)
    assert run["status"] == "rejected" and "bob: keep capacity" in run["error"]
    # a fresh run with an approval goes through: drain, then stop
    assert live_cluster.cli("--deploy", "--no-wait", workers=2).returncode == 3
    assert live_cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=2).returncode == 0
    result = live_cluster.cli("--resume", workers=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "draining and removing rdtest-worker-3" in result.stdout
    assert worker_names(live_cluster) == ["rdtest-worker-1", "rdtest-worker-2"]
    assert len(alive_nodes(live_cluster)) == 3


def test_an_expired_approval_is_not_accepted(live_cluster, tmp_path):
    short = write_config(tmp_path / "short-ttl.yaml",
                         {**live_cluster.config, "approvals": {"ttl_seconds": 1}})
    assert live_cluster.cli("--deploy", "--no-wait", workers=1, config=short).returncode == 3
    assert live_cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=1,
                            config=short).returncode == 0
    time.sleep(1.5)
    result = live_cluster.cli("--resume", "--no-wait", workers=1, config=short)
    assert result.returncode == 3 and "expired" in result.stdout
    assert live_cluster.cli("reject", "worker_launch", "--reason", "cleanup", workers=1,
                            config=short).returncode == 0
    assert len(worker_names(live_cluster)) == 2


def test_without_a_tty_the_run_waits_for_an_approval_given_elsewhere(live_cluster):
    proc = spawn_cli("--deploy", config=live_cluster.config_path,
                     env=clean_env(RAY_NUM_WORKERS="1"))
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "waiting for an approval" in line:
                break
        command = next(proc.stdout).strip()
        assert command.endswith("approve worker_launch --acknowledge-risks"), seen
        approve = live_cluster.cli("approve", "worker_launch", "--acknowledge-risks", workers=1)
        assert approve.returncode == 0
        rest = proc.stdout.read()
        assert proc.wait(120) == 0, rest
        assert "approved by" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert worker_names(live_cluster) == ["rdtest-worker-1"]
    assert live_cluster.cli("--deploy", workers=2).returncode == 0  # growing needs no approval
    assert len(worker_names(live_cluster)) == 2


def spawn_tty(cluster, *args, workers):
    env = clean_env(RAY_NUM_WORKERS=str(workers))
    return pexpect.spawn(sys.executable, ["deploy_master.py", "--config", str(cluster.config_path),
                                          *args], cwd=str(ROOT), env=env, encoding="utf-8",
                         timeout=120)


def test_interactive_prompt_declined_rejects_the_run(live_cluster):
    child = spawn_tty(live_cluster, "--deploy", workers=1)
    child.expect("delete worker rdtest-worker-2")
    child.expect(r"Type the checkpoint name \(worker_launch\) to approve")
    child.sendline("worker")  # not the name: no approval
    child.expect("Reason")
    child.sendline("not now")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    assert "rejected" in child.before
    assert len(worker_names(live_cluster)) == 2


def test_interactive_prompt_approves_when_the_name_is_typed(live_cluster):
    child = spawn_tty(live_cluster, "--deploy", "--operator", "erin", workers=1)
    child.expect(r"Type the checkpoint name \(worker_launch\) to approve")
    child.sendline("worker_launch")
    child.expect("Reason")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    record = live_cluster.store().approvals("worker_launch")[0]
    assert (record["approver"], record["source"], record["acknowledge_risks"]) == ("erin", "cli", True)
    assert worker_names(live_cluster) == ["rdtest-worker-1"]
    assert live_cluster.cli("--deploy", workers=2).returncode == 0
    assert len(alive_nodes(live_cluster)) == 3

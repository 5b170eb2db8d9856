#!/usr/bin/env python3
"""The ssh platform against Ray started by hand over SSH, on lab hosts (network namespaces,
each with its own sshd; the deployer and the baseline run on the lab's ops host). Needs root.

(a) by hand: ``ssh head ray start --head ...``, then ``ssh wN ray start --address=...`` on
    every worker at once, until every node is ALIVE, then the same Serve app PUT through
    the dashboard, until it answers;
(b) ``deploy_master.py --deploy --auto-approve`` of the same nodes and app on hosts that
    have nothing (the environment jobs build the venv on every host);
(c) the same after a teardown: the hosts keep the venv the jobs built (as (a)'s hosts
    have Ray installed), so it compares like with like; (a) and (c) are timed in turns,
    ``--rounds`` times (medians: one round's ratio swings by 0.3 on this machine), each
    with its phases (by hand: head, workers, serve; ours: the checkpoints) beside it;
(d) ``deploy_master.py plan`` (all eight checkpoints) on the healthy cluster of (c), with
    the SSH connections of the command before it (they live 60 s) and cold (none open);
(e) the same on a healthy cluster of ``--plan-hosts`` hosts (a head and a worker on each
    other host).

Prints seconds and the ratios b/a and c/a (goal <= 1.15), d and e (goal <= 1 s).

    python benchmarks/ssh_deploy.py [--hosts 4] [--plan-hosts 8] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import processes  # noqa: E402
from lab import Lab, available, cleanup_stale  # noqa: E402
from tests.ssh_lab import PY, SSHLab  # noqa: E402

# run in ops: Ray started by hand over SSH, then Serve through the dashboard's REST API
BY_HAND = r'''
import json, os, secrets, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
import requests
key, known_hosts, python, head, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
token, project = secrets.token_urlsafe(32), os.getcwd()  # the checkout: the hosts see it too
env = f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN={token} RAY_USAGE_STATS_ENABLED=0 PYTHONPATH={project}"
ray = f"{python} -m ray.scripts.scripts"
common = "--disable-usage-stats --num-cpus=1 --memory=1073741824 --object-store-memory=322122547"
def ssh(address, command):
    done = subprocess.run(["ssh", "-i", key, "-o", f"UserKnownHostsFile={known_hosts}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                           f"root@{address}", f"cd {project} && {env} {command}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{address}: {done.stderr[-500:]}")
session = requests.Session()
session.headers["Authorization"] = f"Bearer {token}"
url = f"http://{head}:8265"
def alive(n):
    try:
        rows = session.get(f"{url}/api/v0/nodes", params={"detail": "true"}, timeout=5)
    except requests.RequestException:
        return False
    found = rows.json()["data"]["result"]["result"] if rows.ok else []
    return sum(r["state"] == "ALIVE" for r in found) >= n
def wait(predicate, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)
start = time.monotonic()
phases = {}
def phase(name):
    phases[name] = time.monotonic() - start - sum(phases.values())
ssh(head, f"{ray} start --head --node-ip-address={head} --dashboard-host={head} {common}")
phase("head")
with ThreadPoolExecutor(len(workers)) as pool:
    list(pool.map(lambda w: ssh(w, f"{ray} start --address={head}:6379 --node-ip-address={w} "
                                    f"{common}"), workers))
wait(lambda: alive(1 + len(workers)))
phase("workers")
session.put(f"{url}/api/serve/applications/", timeout=60, json={
    "proxy_location": "HeadOnly", "http_options": {"host": head, "port": 8000},
    "applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                      "route_prefix": "/hello"}]}).raise_for_status()
def answers():
    try:
        return requests.get(f"http://{head}:8000/hello", timeout=2).status_code == 200
    except requests.RequestException:
        return False
wait(answers)
phase("serve")
print(json.dumps({"seconds": time.monotonic() - start, "phases": phases}))
'''


STEP = re.compile(r"^\[\d+/\d+\] (\S+) .*\(([\d.]+)s\)$", re.M)


def timed(ssh: SSHLab, *args: str, config: Path, cold: bool = False,
          steps: dict | None = None) -> float:
    """Seconds of a deploy_master command in ops (``cold``: with no SSH connection to reuse:
    a temp dir of its own, where the connections' sockets are); ``steps`` gets the seconds
    of each checkpoint, as the command printed them."""
    env = {}
    if cold:
        fresh = ssh.work / f"tmp-{time.monotonic_ns()}"
        fresh.mkdir()
        env["TMPDIR"] = str(fresh)
    start = time.monotonic()
    done = ssh.cli(*args, config=config, timeout=1200, env=env)
    if done.returncode != 0:
        raise SystemExit(f"deploy_master {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    if steps is not None:
        steps.update((name, float(seconds)) for name, seconds in STEP.findall(done.stdout))
    return time.monotonic() - start


def clear(ssh: SSHLab, hosts: list[str]) -> None:
    """Stop what the baseline started on the lab's hosts (everything there but sshd: the
    hosts are this benchmark's own), by session."""
    for host in hosts:
        for session in sorted({s for _, s, _ in ssh.processes(host)}):
            processes.stop_session(session, grace_seconds=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--plan-hosts", type=int, default=8)
    parser.add_argument("--plans", type=int, default=3, help="plans timed per cluster")
    parser.add_argument("--rounds", type=int, default=3, help="(a) and (c) timed, in turns")
    args = parser.parse_args()
    if available():
        raise SystemExit(f"no lab here: {available()}")
    cleanup_stale()
    lab = Lab.create(owner_pid=os.getpid())
    figures: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rdbench-ssh-", dir="/var/tmp") as tmp:
            ssh = SSHLab(lab, Path(tmp))
            names = ["head"] + [f"w{i}" for i in range(1, max(args.hosts, args.plan_hosts))]
            for name in names:
                ssh.add(name)
            hosts = names[:args.hosts]
            config = ssh.write(ssh.config("bench", hosts))
            figures["b"] = timed(ssh, "--deploy", "--auto-approve", config=config)
            timed(ssh, "--teardown", "--auto-approve", config=config)
            rounds: list[dict] = []  # (a) then (c), in turns: the machine's noise hits both
            for n in range(args.rounds):
                baseline = ssh.python(BY_HAND, str(ssh.keys.identity), str(ssh.keys.known_hosts),
                                      PY, *[ssh.address(h) for h in hosts], timeout=900)
                clear(ssh, hosts)
                if baseline.returncode != 0:
                    raise SystemExit(f"by hand failed:\n{baseline.stdout}{baseline.stderr}")
                by_hand = json.loads(baseline.stdout.strip().splitlines()[-1])
                steps: dict = {}
                c = timed(ssh, "--deploy", "--auto-approve", config=config, steps=steps)
                rounds.append({"a": by_hand["seconds"], "a_phases": by_hand["phases"], "c": c,
                               "c_checkpoints": steps})
                if n < args.rounds - 1:  # the last cluster stays for (d)
                    timed(ssh, "--teardown", "--auto-approve", config=config)
            for key in ("a", "c"):
                figures[key] = statistics.median(r[key] for r in rounds)
                figures[f"{key}_each"] = [round(r[key], 2) for r in rounds]
            middle = sorted(rounds, key=lambda r: r["c"])[len(rounds) // 2]
            figures["a_phases"] = sorted(rounds, key=lambda r: r["a"])[len(rounds) // 2]["a_phases"]
            figures["c_checkpoints"] = middle["c_checkpoints"]
            figures["d"] = statistics.median(timed(ssh, "plan", config=config)
                                             for _ in range(args.plans))
            figures["d_cold"] = statistics.median(timed(ssh, "plan", config=config, cold=True)
                                                  for _ in range(args.plans))
            timed(ssh, "--teardown", "--auto-approve", config=config)
            wide = ssh.write(ssh.config("wide", names[:args.plan_hosts]))
            timed(ssh, "--deploy", "--auto-approve", config=wide)
            figures["e"] = statistics.median(timed(ssh, "plan", config=wide)
                                             for _ in range(args.plans))
            figures["e_cold"] = statistics.median(timed(ssh, "plan", config=wide, cold=True)
                                                  for _ in range(args.plans))
            timed(ssh, "--teardown", "--auto-approve", config=wide)
    finally:
        lab.down()
    a, b, c, d, e = (figures[k] for k in "abcde")
    print(f"(a) by hand: ssh ray start + Serve REST ({args.hosts} hosts)  : {a:6.2f} s  "
          f"(median of {figures['a_each']})")
    print("    " + ", ".join(f"{k} {v:.2f} s" for k, v in figures["a_phases"].items()))
    print(f"(b) deploy_master, hosts with nothing (venv built)  : {b:6.2f} s")
    print(f"(c) deploy_master, hosts with the venv (as in (a))  : {c:6.2f} s  "
          f"(median of {figures['c_each']})")
    print("    " + ", ".join(f"{k} {v:.2f} s" for k, v in figures["c_checkpoints"].items()
                              if v >= 0.05))
    print(f"(d) plan, healthy cluster of {args.hosts} hosts              : {d:6.2f} s  "
          f"(cold: {figures['d_cold']:.2f} s)")
    print(f"(e) plan, healthy cluster of {args.plan_hosts} hosts              : {e:6.2f} s  "
          f"(cold: {figures['e_cold']:.2f} s)")
    print(f"b/a = {b / a:.2f}   c/a = {c / a:.2f} (goal <= 1.15)   d = {d:.2f} s   "
          f"e = {e:.2f} s (goal <= 1 s)")
    print(json.dumps({**figures, "ratio_b_a": b / a, "ratio_c_a": c / a,
                      "hosts": args.hosts, "plan_hosts": args.plan_hosts}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The multi-host lab's own cost, in one run (needs root):

(a) lab up: a lab of N plain hosts on one bridge (namespaces, veths, private mounts);
(b) workspace up: networks, the edge running the CML simulator in pods mode, a runner
    outside, until the CML API answers the runner;
(c) Ray: a head and W workers as CML applications (pods, Ray's default ports), from the
    runner's create calls until every node is ALIVE (asked from a pod): mostly Ray's own start;
(d) down: the whole lab with its cluster (every process stopped, every namespace deleted).

Prints the seconds of each (goal: a, b and d under 5 s each). Nothing leaves the lab.

    python benchmarks/lab_cluster.py [--hosts 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cml_simulator.running import LabWorkspace  # noqa: E402
from lab import Lab, available  # noqa: E402

KEY = "bench-lab-key-0123456789"
CLUSTER = '''
import json, sys, time, requests
from cluster.platforms.cml.client import CMLClient
cml = CMLClient(sys.argv[1], sys.argv[2])
workers, probe_file = int(sys.argv[3]), sys.argv[5]
def wait(path, key, value, seconds=120):
    deadline = time.monotonic() + seconds
    while cml.request("GET", path, "wait").get(key) != value:
        assert time.monotonic() < deadline
        time.sleep(0.1)
runtime = cml.runtimes()[0]["image_identifier"]
pid = cml.request("POST", "/projects", "p", json={"name": "ray", "template": "git",
                                                  "git_url": sys.argv[4]})["id"]
wait(f"/projects/{pid}", "creation_status", "success")
with open(probe_file, "rb") as f:
    cml.request("POST", f"/projects/{pid}/files", "up", files={"probe.py": ("probe.py", f.read())})
env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "bench-ray-token-0123456789",
       "RAYDEPLOY_NODE_ADDRESS_FROM": "CDSW_IP_ADDRESS",  # as the CML platform sets it
       "RAYDEPLOY_RAY_ARGS": json.dumps({"num_cpus": 1, "memory": 10**9,
                                         "object_store_memory": 10**8})}
def app(name, script, **extra):
    return cml.request("POST", f"/projects/{pid}/applications", name, json={
        "name": name, "subdomain": name, "script": script, "cpu": 1, "memory": 1,
        "runtime_identifier": runtime, "bypass_authentication": True, "environment": {**env, **extra}})
started = time.monotonic()
app("head", "cluster/launcher.py", RAYDEPLOY_ROLE="head", RAYDEPLOY_APP_NAME="head")
app("probe", "probe.py")
while True:
    try:
        head = cml.request("POST", f"/projects/{pid}/files/.raydeploy_files/head_address:download", "h")
        break
    except Exception:
        time.sleep(0.2)
for n in range(workers):
    app(f"worker-{n}", "cluster/launcher.py", RAYDEPLOY_ROLE="worker",
        RAYDEPLOY_APP_NAME=f"worker-{n}", RAY_HEAD_ADDRESS=head.decode())
while True:
    try:
        nodes = requests.get("http://probe.ml.lab/", timeout=10).json()
        if len(nodes) == workers + 1 and all(state == "ALIVE" for _, state in nodes):
            break
    except (requests.RequestException, ValueError):
        pass
    time.sleep(0.25)
print(json.dumps({"alive_seconds": time.monotonic() - started, "nodes": nodes}))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    reason = available()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    from tests.cml_simulator.test_pods import PROBE_APP
    work = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    figures = {}

    started = time.monotonic()
    plain = Lab.create(owner_pid=os.getpid())
    plain.add_network("ws", "198.18.0.0/24")
    for n in range(args.hosts):
        plain.add_host(f"h{n}", ["ws"])
    figures[f"(a) lab up, {args.hosts} hosts"] = time.monotonic() - started
    started = time.monotonic()
    plain.down()
    figures[f"    lab down, {args.hosts} hosts"] = time.monotonic() - started

    lab = Lab.create(owner_pid=os.getpid())
    try:
        (work / "ci").mkdir()
        (work / "ci" / "probe.py").write_text(PROBE_APP)
        started = time.monotonic()
        ws = LabWorkspace(lab, work / "sim", api_key=KEY, runner_dirs=(str(work / "ci"),),
                          ready_seconds=60)
        figures["(b) workspace up (edge + runner + CML API answering)"] = time.monotonic() - started
        started = time.monotonic()
        result = ws.runner([sys.executable, "-c", CLUSTER, ws.url, KEY, str(args.workers),
                            str(ROOT), str(work / "ci" / "probe.py")], timeout=600)
        if result.returncode != 0:
            print(result.stdout, result.stderr[-2000:])
            return 1
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        figures[f"(c) 1 head + {args.workers} workers ALIVE across pods (from the first create)"] = \
            answer["alive_seconds"]
        figures["    the same, with the project clone and the runner's process"] = \
            time.monotonic() - started
    finally:
        started = time.monotonic()
        if "ws" in locals():
            ws.stop()
        lab.down()
        figures["(d) down: simulator, every pod and Ray process, every namespace"] = \
            time.monotonic() - started
    width = max(map(len, figures))
    for name, seconds in figures.items():
        print(f"{name:<{width}}  {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

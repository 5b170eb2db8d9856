#!/usr/bin/env python3
"""Deploy time of deploy_master against plain Ray commands, in one run.

(a) baseline: `ray start` for the head, then the workers in parallel, then the same Serve app
    PUT through the dashboard, until it answers HTTP through the proxy;
(b) `deploy_master.py --deploy --auto-approve` of the same config from nothing;
(c) the same command again on the healthy cluster;
(d) `deploy_master.py plan` (all eight checkpoints planned) on the healthy cluster.

Prints seconds and the ratio b/a (goal <= 1.15), c (goal <= 1.5 s) and d (goal <= 1 s). Everything runs on
loopback addresses; every process started here is stopped by its process group.

    python benchmarks/deploy_local.py [--workers 2] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import processes  # noqa: E402
from cluster.ports import pick_loopback, pick_port, pick_port_range  # noqa: E402

GB = 1024 ** 3


def wait(predicate, timeout=180, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(interval)
    raise TimeoutError("timed out")


def baseline(workers: int) -> float:
    """Plain `ray start` + Serve REST, with the same resources, auth and app."""
    ray = str(Path(sys.executable).with_name("ray"))
    token = secrets.token_urlsafe(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    taken_ips, taken_ports = set(), set()
    head_ip = pick_loopback(taken_ips)
    gcs, dash, serve_port = (pick_port(p, taken_ports) for p in (6379, 8265, 8000))
    tmp = tempfile.mkdtemp(prefix="rdbench-")
    common = ["--block", "--disable-usage-stats", "--num-cpus=1", f"--memory={GB}",
              f"--object-store-memory={int(0.3 * GB)}"]

    def node_ports():
        low, high = pick_port_range(100, taken_ports)
        names = ("node-manager-port", "object-manager-port", "metrics-export-port",
                 "runtime-env-agent-port", "dashboard-agent-grpc-port", "dashboard-agent-listen-port")
        return [f"--{n}={pick_port(0, taken_ports)}" for n in names] + [
            f"--min-worker-port={low}", f"--max-worker-port={high}"]

    procs = []
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    start = time.monotonic()
    try:
        procs.append(subprocess.Popen(
            [ray, "start", "--head", f"--node-ip-address={head_ip}", f"--port={gcs}",
             f"--dashboard-host={head_ip}", f"--dashboard-port={dash}",
             f"--ray-client-server-port={pick_port(10001, taken_ports)}", f"--temp-dir={tmp}/h",
             *common, *node_ports()], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
        url = f"http://{head_ip}:{dash}"

        def alive(n):
            rows = session.get(f"{url}/api/v0/nodes", params={"detail": "true"}, timeout=5)
            found = rows.json()["data"]["result"]["result"] if rows.ok else []
            return sum(r["state"] == "ALIVE" for r in found) >= n
        wait(lambda: session.get(f"{url}/api/gcs_healthz", timeout=2).ok and alive(1))
        for i in range(workers):
            procs.append(subprocess.Popen(
                [ray, "start", f"--address={head_ip}:{gcs}",
                 f"--node-ip-address={pick_loopback(taken_ips)}", f"--temp-dir={tmp}/w{i}",
                 *common, *node_ports()], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
        wait(lambda: alive(1 + workers))
        session.put(f"{url}/api/serve/applications/", timeout=60, json={
            "proxy_location": "HeadOnly", "http_options": {"host": head_ip, "port": serve_port},
            "applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                              "route_prefix": "/hello"}]}).raise_for_status()
        plain = requests.Session()
        plain.trust_env = False
        wait(lambda: plain.get(f"http://{head_ip}:{serve_port}/hello", timeout=2).status_code == 200)
        return time.monotonic() - start
    finally:
        for proc in procs:
            processes.stop_session(proc.pid, grace_seconds=1)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def deploy_master(config: Path, *args: str) -> float:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "deploy_master.py", "--config", str(config), *args],
                            cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"deploy_master {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    figures = {"a": [], "b": [], "c": [], "d": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="rdbench-state-") as tmp:
            config = Path(tmp) / "cluster.yaml"
            config.write_text(yaml.safe_dump({
                "cluster_name": "bench", "state_dir": f"{tmp}/state",
                "head": {"cpu": 1, "memory": 1},
                "workers": {"count": args.workers, "cpu": 1, "memory": 1},
                # the baseline deploys only the hello app: compare like with like
                "serve": {"applications": [{"name": "hello", "route_prefix": "/hello",
                                            "import_path": "examples.apps.hello:app"}],
                          "management_api": {"enabled": False}}}))
            figures["a"].append(baseline(args.workers))
            try:
                figures["b"].append(deploy_master(config, "--deploy", "--auto-approve"))
                figures["c"].append(deploy_master(config, "--deploy"))
                figures["d"].append(deploy_master(config, "plan"))
            finally:
                deploy_master(config, "--teardown", "--auto-approve")
    a, b, c, d = (statistics.median(figures[k]) for k in "abcd")
    print(f"(a) plain ray start + Serve REST : {a:6.2f} s")
    print(f"(b) deploy_master from nothing   : {b:6.2f} s")
    print(f"(c) deploy_master re-run, healthy: {c:6.2f} s")
    print(f"(d) deploy_master plan, healthy  : {d:6.2f} s")
    print(f"b/a = {b / a:.3f}  (goal <= 1.15)   c = {c:.2f} s  (goal <= 1.5 s)   "
          f"d = {d:.2f} s  (goal <= 1 s)")
    print(json.dumps({**figures, "ratio_b_a": b / a, "workers": args.workers}))


if __name__ == "__main__":
    main()

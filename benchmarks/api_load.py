#!/usr/bin/env python3
"""Load on the management API served by gunicorn on loopback, against a live local cluster.

1. GET /api/v1/cluster/status from 16 concurrent clients: p50, p99, requests/s
   (answers are cached for RAYDEPLOY_STATUS_CACHE_SECONDS, default 1 s; goal p99 < 50 ms).
   Then the same while /metrics is scraped every second (as Prometheus would): p99 with
   the scrapes, and the ratio to p99 without (goal: p99 still < 50 ms).
2. 32 event streams (SSE) held open on a run awaiting approval, while /health and
   /api/v1/cluster/status are loaded: their p99 (goal < 100 ms) and how many streams the
   server accepted (the rest get 429: api.sse_per_principal, half a worker's threads).
3. Approval POSTs from 16 concurrent clients, each with its own Idempotency-Key and each
   sent twice: then the records are counted (none lost, none duplicated).

    python benchmarks/api_load.py [--config FILE] [--seconds 10] [--clients 16]

Uses the cluster of --config (default: the local example; deploy it first with make deploy).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(config: Path, port: int, state_dir: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "RAYDEPLOY_CONFIG": str(config), "RAYDEPLOY_API_HOST": "127.0.0.1",
           "RAYDEPLOY_API_PORT": str(port)}
    if state_dir:
        env["RAYDEPLOY_STATE_DIR"] = state_dir
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen([gunicorn, "-c", "api_server/gunicorn.conf.py", "api_server.wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    processes.stop_session(proc.pid)
    raise SystemExit("gunicorn did not start")


def _client(url, method, stop_at, bodies, out):
    session = requests.Session()
    session.trust_env = False
    latencies, statuses = [], {}
    n = 0
    while (time.monotonic() < stop_at) if bodies is None else n < len(bodies):
        kwargs = {} if bodies is None else bodies[n]
        t = time.perf_counter()
        response = session.request(method, url, timeout=30, **kwargs)
        latencies.append(time.perf_counter() - t)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        n += 1
    out.put((latencies, statuses))


def hammer(url: str, clients: int, seconds: float, method: str = "GET", bodies=None):
    """``clients`` concurrent clients, each its own process (a client's own GIL must not
    show up as server latency)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stop_at = time.monotonic() + seconds
    procs = [ctx.Process(target=_client, args=(url, method, stop_at,
                                               None if bodies is None else bodies[i], out))
             for i in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    statuses: dict[int, int] = {}
    for _, st in results:
        for code, n in st.items():
            statuses[code] = statuses.get(code, 0) + n
    return {"requests": len(latencies), "rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "statuses": statuses}


def scrape_every_second(url: str, seconds: float) -> None:
    """What a Prometheus scraping the API does; prints how long a scrape takes."""
    took, stop_at = [], time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            response = session.get(url, timeout=10)
            assert response.status_code == 200, response.status_code
            took.append(time.monotonic() - started)
            time.sleep(max(0.0, 1 - (time.monotonic() - started)))
    print(f"  /metrics: {len(took)} scrapes, {1000 * max(took):.1f} ms at most")


def hold_streams(url: str, count: int) -> dict:
    """Open ``count`` event streams and keep reading them on threads until ``stop`` is set."""
    import threading
    stop, lock, result = threading.Event(), threading.Lock(), {"accepted": 0, "refused": 0}

    def read():
        with requests.Session() as session:
            response = session.get(url, stream=True, timeout=(5, 60))
            with lock:
                result["accepted" if response.status_code == 200 else "refused"] += 1
            if response.status_code == 200:
                for _ in response.iter_lines():
                    if stop.is_set():
                        break
            response.close()
    for _ in range(count):
        threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 10
    while result["accepted"] + result["refused"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return {**result, "stop": stop}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "examples" / "cluster.local.yaml"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    port = free_port()
    server = start_gunicorn(Path(args.config), port)
    try:
        status = hammer(f"http://127.0.0.1:{port}/api/v1/cluster/status", args.clients, args.seconds)
        print(f"GET /api/v1/cluster/status, {args.clients} clients, {args.seconds:.0f} s: "
              f"{status['requests']} requests, {status['rps']:.0f} req/s, "
              f"p50 {status['p50_ms']:.1f} ms, p99 {status['p99_ms']:.1f} ms (goal < 50 ms), "
              f"statuses {status['statuses']}")
        scraper = multiprocessing.Process(target=scrape_every_second,
                                          args=(f"http://127.0.0.1:{port}/metrics", args.seconds + 2))
        scraper.start()
        scraped = hammer(f"http://127.0.0.1:{port}/api/v1/cluster/status", args.clients,
                         args.seconds)
        scraper.join()
        print(f"  ... with /metrics scraped every second: p99 {scraped['p99_ms']:.1f} ms "
              f"(goal < 50 ms; {scraped['p99_ms'] / max(status['p99_ms'], 0.001):.2f}x without), "
              f"statuses {scraped['statuses']}")
    finally:
        processes.stop_session(server.pid)
        server.wait()

    # Approvals race on 8 gates of a store of their own (not the cluster's audit trail):
    # every client POSTs to every gate, each with its own Idempotency-Key, each sent twice.
    # Exactly one decision per gate may be recorded; a repeated key returns that record.
    with tempfile.TemporaryDirectory(prefix="apiload-") as tmp:
        from store import Store
        store = Store(tmp)
        gates = ["prerequisites", "project_setup", "job_creation", "head_launch",
                 "worker_launch", "serve_deploy", "validation", "teardown"]
        shown = {}  # what each gate shows: the run and plan a decision names
        for name in gates:
            run = store.runs.create_run("deploy", [name], "bench", "cli", status="awaiting_approval")
            store.approvals.open_approval_request(run.id, name, f"fp-{name}", {}, False, [], "bench")
            shown[name] = {"run_id": run.id, "plan_fingerprint": f"fp-{name}"}
        config = Path(tmp) / "cluster.yaml"
        config.write_text(yaml.safe_dump({**yaml.safe_load(Path(args.config).read_text()),
                                          "state_dir": tmp}))
        port = free_port()
        server = start_gunicorn(config, port, tmp)
        try:
            streams = hold_streams(f"http://127.0.0.1:{port}/api/v1/deployments/"
                                   f"{store.runs.list_runs()[0].id}/events", 32)
            for path in ("/health", "/api/v1/cluster/status"):
                loaded = hammer(f"http://127.0.0.1:{port}{path}", args.clients, 5)
                print(f"GET {path} with 32 event streams held open ({streams['accepted']} "
                      f"accepted, {streams['refused']} refused with 429): p99 "
                      f"{loaded['p99_ms']:.1f} ms (goal < 100 ms), statuses {loaded['statuses']}")
            streams["stop"].set()
            bodies = [[{"json": {"checkpoint": gate, "decision": "approve",
                                 "approved_by": f"client{c}", **shown[gate]},
                        "headers": {"Idempotency-Key": f"c{c}-{gate}"}}
                       for gate in gates for _ in range(2)] for c in range(args.clients)]
            posts = hammer(f"http://127.0.0.1:{port}/api/v1/approvals", args.clients, 0,
                           "POST", bodies)
        finally:
            processes.stop_session(server.pid)
            server.wait()
        records = store.approvals.decisions()
        per_gate = {g: sum(r.checkpoint == g for r in records) for g in gates}
        print(f"POST /api/v1/approvals, {args.clients} clients x {len(gates)} gates x 2: "
              f"{posts['requests']} requests, {posts['rps']:.0f} req/s, p50 {posts['p50_ms']:.1f} ms, "
              f"p99 {posts['p99_ms']:.1f} ms, statuses {posts['statuses']}")
        print(f"records: {len(records)} for {len(gates)} gates; per gate {sorted(set(per_gate.values()))}"
              f"; 201 answers {posts['statuses'].get(201, 0)}; lost "
              f"{len(gates) - len(records) if len(records) < len(gates) else 0}; duplicated "
              f"{max(0, len(records) - len(gates))}")


if __name__ == "__main__":
    main()

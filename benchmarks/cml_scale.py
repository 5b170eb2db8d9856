#!/usr/bin/env python3
"""Launching many workers on CML (the simulator, with a slow application start), and the
management views of a cluster that large.

    python benchmarks/cml_scale.py [--workers 64] [--start-delay 2] [--fault-rate 0.2]
                                   [--max-rps 50] [--baseline] [--no-views]

The simulator enforces the same request rate the client keeps to (``cml.max_requests_per_second``),
so every 429 it answers is counted. Each worker is a tiny script app (publish its address as
a node does, then sleep: not Ray, so hundreds fit this machine). A launch is done when every
application is APPLICATION_RUNNING, as CML reports it.

- ours: ``Platform.create_apps`` (one listing, then every create at once paced by the rate
  limit, a name lookup only after an ambiguous failure), then one paginated listing per poll.
- ``--baseline``: the launch before it (16 threads, each create preceded by a lookup by name,
  one GET per app per poll), in a simulator of its own.
- views (unless ``--no-views``): with the workers and a head app running, the latency of
  ``GET /api/v1/resources/nodes`` (the management API in-process, no response cache) and of
  ``deploy_master.py plan``, cold (no node address remembered yet) and warm. No Ray runs, so
  they are measured twice: with the head's dashboard unreachable (what the code meets with
  no Ray: the platform path only), and with a stand-in dashboard that reports every app's
  published address as an ALIVE node (not Ray's timing, only its answers' shape) so that the
  per-node path runs: matching every app to its node by the address it published.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.config import parse_config  # noqa: E402
from cluster.lifecycle import apps_running  # noqa: E402
from cluster.platforms.cml import CMLPlatform  # noqa: E402
from cluster.platforms.cml.client import CMLClient  # noqa: E402
from cluster.platforms.records import RUNNING, AppSpec
from cml_simulator.running import SimulatorProcess  # noqa: E402
from core.timing import poll_until  # noqa: E402
from store import Store  # noqa: E402

KEY = "bench-key-0123456789"
CLUSTER = "bench"
# a node's first step (publish nodes/<app>.json, as cluster/launcher.py does), then sleep
NODE_SCRIPT = """import json, os, time
files = os.path.join(os.environ["RAYDEPLOY_PROJECT_FILES"], "nodes")
os.makedirs(files, exist_ok=True)
name = os.environ["RAYDEPLOY_APP_NAME"]
with open(os.path.join(files, name + ".json.tmp"), "w") as f:
    f.write(json.dumps({"app": name, "ip": os.environ["CDSW_IP_ADDRESS"], "pid": os.getpid(),
                        "role": os.environ["RAYDEPLOY_ROLE"]}))
os.replace(os.path.join(files, name + ".json.tmp"), os.path.join(files, name + ".json"))
while True:
    time.sleep(3600)
"""


class Simulator(SimulatorProcess):
    """The simulator with this benchmark's key; it may take a minute to stop 256 apps."""

    def __init__(self, state_dir: Path, *flags: str):
        super().__init__(state_dir, *flags, api_key=KEY, stop_seconds=60)

    def app_names(self, project_id: str) -> list[str]:
        """Every application's name as the API lists them (a client of its own, patient
        enough to ride out the injected faults)."""
        client = CMLClient(self.url, KEY, retries=20, backoff=0.05, max_backoff=0.5)
        return [a["name"] for a in client.list(f"/projects/{project_id}/applications",
                                                "applications", "census")]


def make_platform(url: str, max_rps: float) -> CMLPlatform:
    runtime = CMLClient(url, KEY).runtimes()[0]["image_identifier"]  # the simulator's one
    config = parse_config({"platform": "cml", "cluster_name": CLUSTER,
                           "cml": {"host": url, "api_key": KEY, "shared_host_network": True,
                                   "runtime_identifier": runtime,
                                   "max_requests_per_second": max_rps}}, environ={})
    return CMLPlatform(config)


def node_spec(name: str, role: str) -> AppSpec:
    return AppSpec(name=name, script="node.py", cpu=1, memory=1,
                   env={"RAYDEPLOY_APP_NAME": name, "RAYDEPLOY_ROLE": role})


def launch_ours(platform: CMLPlatform, specs: list[AppSpec]) -> None:
    apps = platform.create_apps(specs)
    poll_until(lambda: apps_running(platform, apps), 600, f"{len(apps)} apps to run",
               interval=0.25)


def launch_before(platform: CMLPlatform, specs: list[AppSpec]) -> None:
    """As add_workers and this benchmark did before create_apps."""
    def one(spec: AppSpec) -> None:
        app = platform.create_app(spec)  # a lookup by name, then the create
        while platform.get_app(app.id).status != RUNNING:
            time.sleep(0.1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, specs))


def measure(label: str, launch, args, tmp: Path, keep: bool = False):
    """One launch in a simulator of its own; returns (figures, simulator or None)."""
    flags = ["--app-start-delay", str(args.start_delay), "--max-requests-per-second",
             str(args.max_rps), "--error-rate", str(args.fault_rate), "--seed", str(args.seed)]
    sim = Simulator(tmp / label, *flags)
    try:
        platform = make_platform(sim.url, args.max_rps)
        project = platform.create_project(CLUSTER)
        (sim.state_dir / "projects" / project.id / "node.py").write_text(NODE_SCRIPT)
        specs = [node_spec(f"{CLUSTER}-worker-{i}", "worker") for i in range(1, args.workers + 1)]
        before, calls, throttled = sim.counts(), platform.client.calls, platform.client.throttled
        started = time.monotonic()
        launch(platform, specs)
        took = time.monotonic() - started
        after = sim.counts()
        names = sim.app_names(project.id)
        duplicates = sum(n - 1 for n in Counter(names).values() if n > 1)
        figures = {"launch": label, "seconds": took, "requests": platform.client.calls - calls,
                   "received": after["requests"] - before["requests"],
                   "429s": platform.client.throttled - throttled,
                   "rate_limited": after["rate_limited"] - before["rate_limited"],
                   "faults": after["injected_errors"] - before["injected_errors"],
                   "apps": len(set(names)), "duplicates": duplicates}
        if keep:
            return figures, (sim, platform, project)
    except BaseException:
        sim.stop()
        raise
    sim.stop()
    return figures, None


class StandInDashboard:
    """Answers the Ray dashboard calls the nodes view and the planners make, for nodes that
    are not Ray: every app that published its address is an ALIVE node, nothing runs on
    them. Not Ray's timing, only its answers' shape; it lets the per-node path run."""

    def __init__(self, files: Path, host: str, port: int):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        def rows() -> list[dict]:
            out = []
            for path in sorted((files / "nodes").glob("*.json")):
                node = json.loads(path.read_text())
                out.append({"node_id": f"{node['app']:0>56}"[-56:], "node_ip": node["ip"],
                            "node_name": node["ip"], "state": "ALIVE",
                            "is_head_node": node["role"] == "head",
                            "resources_total": {"CPU": 1.0, "memory": 2 ** 30}})
            return out

        answers = {"/api/gcs_healthz": lambda: "success",
                   "/api/v0/nodes": lambda: {"data": {"result": {"result": rows()}}},
                   "/api/v0/actors": lambda: {"data": {"result": {"result": []}}},
                   "/api/cluster_status": lambda: {"data": {"clusterStatus": {
                       "loadMetricsReport": {"usageByNode": {}}}}},
                   "/api/serve/applications/": lambda: {"applications": {}, "proxies": {}},
                   "/api/jobs/": lambda: [], "/api/prometheus_health": lambda: {"result": True}}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                answer = answers.get(self.path.split("?", 1)[0])
                body = json.dumps(answer() if answer else {"error": "not here"}).encode()
                self.send_response(200 if answer else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def views(sim: Simulator, platform: CMLPlatform, project, tmp: Path, max_rps: float,
          tries: int = 5) -> list[dict]:
    """Latency of GET /api/v1/resources/nodes and of ``deploy_master.py plan`` with the
    launched workers and a head app: once with the head's dashboard unreachable, once with a
    stand-in answering that every node is ALIVE. The first try of each starts with no node
    address remembered (cold); the others are warm."""
    from cluster.inventory import NODE_IPS_KEY
    from cluster.layout import PortLayout

    head = platform.create_apps([node_spec(f"{CLUSTER}-head", "head")])
    poll_until(lambda: apps_running(platform, head), 60, "the head app to run", interval=0.25)
    head_file = poll_until(lambda: platform.read_file(f"nodes/{CLUSTER}-head.json"), 30,
                           "the head to publish its address", interval=0.25)
    doc = {"cluster_name": CLUSTER, "platform": "cml", "state_dir": str(tmp / "views-state"),
           "project_dir": str(ROOT), "jobs_config": str(ROOT / "jobs_config.yaml"),
           "cml": {"host": sim.url, "project_name": CLUSTER, "shared_host_network": True,
                   "runtime_identifier": platform.runtime_identifier,
                   "max_requests_per_second": max_rps},
           "head": {"cpu": 1, "memory": 1},  # as the apps were made: nothing to replace
           "workers": {"count": len(platform.list_apps()) - 1, "cpu": 1, "memory": 1}}
    config_path = tmp / "views.yaml"
    config_path.write_text(yaml.safe_dump(doc))
    config = parse_config({**doc, "cml": {**doc["cml"], "api_key": KEY}}, environ={})
    store = Store(config.state_dir)
    # the head's ports, recorded as head_launch records them: the dashboard's address is known
    layout = PortLayout(config, store).ensure(False, [])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CML_", "RAY_"))}
    env["CML_API_KEY"] = KEY

    out = []
    files = sim.state_dir / "projects" / project.id / ".raydeploy_files"
    for phase in ("dashboard unreachable", "stand-in dashboard, every node ALIVE"):
        dashboard = None
        if phase.startswith("stand-in"):
            dashboard = StandInDashboard(files, json.loads(head_file)["ip"], layout.dashboard_port)
        try:
            store.kv.delete(NODE_IPS_KEY)  # cold: no node address remembered
            figures = {"phase": phase, **time_nodes_view(sim, config, tries)}
            store.kv.delete(NODE_IPS_KEY)
            figures.update(time_plan(sim, config_path, env, tries))
            out.append(figures)
        finally:
            if dashboard:
                dashboard.stop()
    return out


def time_nodes_view(sim: Simulator, config, tries: int) -> dict:
    """GET /api/v1/resources/nodes of the management API (in-process, no response cache):
    [(ms, CML calls)] per try, the first one cold."""
    from api_server import create_app
    from api_server.settings import Settings
    client = create_app(Settings(status_cache_seconds=0), config).test_client()
    runs, answer = [], None
    for _ in range(tries):
        before, started = sim.counts()["requests"], time.monotonic()
        answer = client.get("/api/v1/resources/nodes")
        runs.append(((time.monotonic() - started) * 1000, sim.counts()["requests"] - before))
        if answer.status_code != 200:
            raise SystemExit(f"nodes: {answer.status_code} {answer.get_data(as_text=True)[:500]}")
    body = answer.get_json()
    return {"nodes": runs, "nodes_total": body["total_nodes"], "nodes_alive": body["alive_nodes"]}


def time_plan(sim: Simulator, config_path: Path, env: dict, tries: int) -> dict:
    """``deploy_master.py plan``: [(ms with process start, CML calls)] per try, the planning
    time it reports itself, and the steps it says would fail; the first try cold."""
    runs, said, fails = [], [], set()
    for _ in range(tries):
        before, started = sim.counts()["requests"], time.monotonic()
        done = subprocess.run([sys.executable, str(ROOT / "deploy_master.py"), "--config",
                               str(config_path), "plan"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        runs.append(((time.monotonic() - started) * 1000, sim.counts()["requests"] - before))
        if done.returncode != 0:
            raise SystemExit(f"plan failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        first = done.stdout.splitlines()[0]  # "... from the live cluster (0.42s)"
        said.append(float(first.rsplit("(", 1)[1].rstrip("s)")) * 1000)
        fails.update(line.strip() for line in done.stdout.splitlines() if "would fail" in line)
    return {"plan": runs, "plan_said": said, "plan_fails": sorted(fails)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--start-delay", type=float, default=2.0)
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of API calls failing 5xx, half after taking effect")
    parser.add_argument("--max-rps", type=float, default=50.0,
                        help="cml.max_requests_per_second, enforced by the simulator too")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", action="store_true",
                        help="also time the launch before create_apps (slow: lookups, N GETs)")
    parser.add_argument("--no-views", action="store_true")
    parser.add_argument("--json", action="store_true", help="the figures as JSON too")
    args = parser.parse_args()
    print(f"{args.workers} workers, app start {args.start_delay:g} s, CML limit "
          f"{args.max_rps:g} req/s (the simulator answers 429 over it), "
          f"faults {args.fault_rate:.0%} (half after taking effect)", flush=True)
    rows, view = [], None
    with tempfile.TemporaryDirectory(prefix="cml-bench-") as tmp_name:
        tmp = Path(tmp_name)
        figures, kept = measure("ours", launch_ours, args, tmp, keep=not args.no_views)
        rows.append(figures)
        if kept:
            sim, platform, project = kept
            try:
                view = views(sim, platform, project, tmp, args.max_rps)
            finally:
                sim.stop()
        if args.baseline:
            rows.append(measure("before", launch_before, args, tmp)[0])
    print(f"{'launch':<8}{'wall':>8}{'requests':>10}{'received':>10}{'429s':>6}"
          f"{'faults':>8}{'apps':>7}{'duplicates':>12}")
    for r in rows:
        print(f"{r['launch']:<8}{r['seconds']:>7.2f}s{r['requests']:>10}{r['received']:>10}"
              f"{r['429s']:>6}{r['faults']:>8}{r['apps']:>7}{r['duplicates']:>12}")
    print("  requests: sent by the client (retries included); received: by the simulator;")
    print("  429s: seen by the client (the simulator answers 429 over the rate limit: "
          + ", ".join(f"{r['launch']} {r['rate_limited']}" for r in rows) + ");")
    print("  faults: injected 5xx; duplicates: apps listed under a name already listed")
    if args.baseline:
        print("  before: 16 threads, each create after a lookup by name, one GET per app "
              "every 0.1 s until it runs")
    for phase in view or []:
        med = lambda runs: sorted(runs)[len(runs) // 2]  # noqa: E731
        nodes_warm, plan_warm = phase["nodes"][1:], phase["plan"][1:]
        said_warm = phase["plan_said"][1:]
        print(f"{phase['nodes_total']} nodes (head + workers), {phase['phase']} "
              f"({phase['nodes_alive']} ALIVE); cold = first try, no node address remembered; "
              f"warm = median of the others")
        print(f"  GET /api/v1/resources/nodes  cold {phase['nodes'][0][0]:6.0f} ms "
              f"({phase['nodes'][0][1]} CML calls), warm {med(nodes_warm)[0]:5.0f} ms "
              f"({med(nodes_warm)[1]} CML calls)  [in-process, no response cache]")
        print(f"  deploy_master.py plan        cold {phase['plan_said'][0]:6.0f} ms "
              f"({phase['plan'][0][1]} CML calls), warm {sorted(said_warm)[len(said_warm) // 2]:5.0f}"
              f" ms ({med(plan_warm)[1]} CML calls)  [as it reports; with process start: "
              f"{med(plan_warm)[0]:.0f} ms]")
        for line in phase["plan_fails"]:
            print(f"    plan: {line.strip()}")
    if args.json:
        print(json.dumps({"launches": rows, "views": view}, indent=2))


if __name__ == "__main__":
    main()

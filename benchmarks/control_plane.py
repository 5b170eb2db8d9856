#!/usr/bin/env python3
"""A deploy to CML from outside the workspace (through the control plane) against the same
deploy run inside it (embedded, as from a CML session), in the lab (needs root):

(a) outside: a runner that reaches only the workspace's edge runs
    `deploy_master.py --deploy --auto-approve`: the bootstrap (project, control app, its
    venv) and then the run on the control plane, followed through its event stream;
(b) inside: a session host on the workspace network runs the same deploy of another
    cluster of the same shape with `cml.control_plane: embedded`;
(c) a run's events reaching the outside client: a change of the worker count, followed
    through the public URL; each event's arrival minus its creation on the control plane.

Prints the seconds of each, the ratio of the runs (a's run / b, goal <= 1.2; and of the
walls, the bootstrap a pays once included) and the events' p50/p99 latency (goal p99 < 1 s).

    python benchmarks/control_plane.py
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cml_simulator.running import LabWorkspace  # noqa: E402
from lab import Lab, available  # noqa: E402

KEY = "bench-cml-key-0123456789"
TOKEN = "bench-token-0123456789abcd"
FOLLOW = '''
import json, sys, time, requests
url, token = sys.argv[1:3]
headers = {"Authorization": f"Bearer {token}"}
deadline = time.monotonic() + 120
while True:
    runs = requests.get(url + "/api/v1/deployments?limit=1", headers=headers, timeout=10).json()
    run = runs["deployments"][0] if runs["deployments"] else None
    if run and run["status"] == "running":
        break
    assert time.monotonic() < deadline
    time.sleep(0.05)
latencies = []
with requests.get(f"{url}/api/v1/deployments/{run['id']}/events", headers=headers,
                  stream=True, timeout=(10, 300)) as stream:
    for line in stream.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            data = json.loads(line[6:])
            if "created_at" in data:
                latencies.append(time.time() - data["created_at"])
print(json.dumps(latencies))
'''


def config(name: str, runtime: str, state_dir: Path, **cml) -> dict:
    return {"cluster_name": name, "platform": "cml", "state_dir": str(state_dir),
            "cml": {"project_name": f"{name}-project", "git_url": str(ROOT),
                    "runtime_identifier": runtime, **cml},
            "head": {"cpu": 1, "memory": 1}, "workers": {"count": 2, "cpu": 1, "memory": 1},
            "serve": {"applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                                        "route_prefix": "/hello"}],
                      # embedded there is no control plane for it to forward to
                      "management_api": {"enabled": cml.get("control_plane") != "embedded"}}}


def deploy(ws: LabWorkspace, host: str, path: Path, env: dict) -> tuple[float, float, str]:
    """(wall seconds, seconds of the run itself, output) of a deploy on ``host``."""
    started = time.monotonic()
    result = ws.lab.run(host, [sys.executable, "deploy_master.py", "--config", str(path),
                               "--deploy", "--auto-approve"], env=env, cwd=str(ROOT), timeout=1800)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"deploy on {host} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    run = re.search(r"run run-\w+ succeeded in ([\d.]+)s", result.stdout)
    return wall, float(run.group(1)) if run else wall, result.stdout


def main() -> int:
    reason = available()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-cp-"))
    (work / "ci").mkdir()
    (work / "session").mkdir()
    lab = Lab.create(owner_pid=os.getpid())
    figures = {}
    try:
        ws = LabWorkspace(lab, work / "sim", api_key=KEY,
                          runner_dirs=(str(work / "ci"),), ready_seconds=60)
        lab.add_host("session", ["ws"], dirs={str(work / "session"): str(work / "session")})
        runtime = json.loads(ws.runner([sys.executable, "-c",
            "import sys, json, requests; print(json.dumps(requests.get(sys.argv[1], headers="
            "{'Authorization': 'Bearer ' + sys.argv[2]}).json()['runtimes'][0]))",
            f"{ws.url}/api/v2/runtimes", KEY]).stdout)["image_identifier"]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/root",
               "CML_HOST": ws.url, "CML_API_KEY": KEY, "PYTHONUNBUFFERED": "1",
               "RAYDEPLOY_API_TOKENS": f"ci:admin:{TOKEN}", "RAYDEPLOY_TOKEN": TOKEN}
        outside = work / "ci" / "cml.yaml"
        outside.write_text(yaml.safe_dump(config("outside", runtime, work / "ci" / "state")))
        inside = work / "session" / "cml.yaml"
        inside.write_text(yaml.safe_dump(config("inside", runtime, work / "session" / "state",
                                                control_plane="embedded")))

        wall, run, _ = deploy(ws, "runner", outside, env)
        figures["(a) from outside: bootstrap + run, wall"] = wall
        figures["    the run itself (on the control plane)"] = run
        # a person in a session: embedded, single-user (API tokens are the control plane's;
        # they never give the CLI a role)
        session_env = {k: v for k, v in env.items()
                       if k not in ("RAYDEPLOY_API_TOKENS", "RAYDEPLOY_TOKEN")}
        wall_b, run_b, _ = deploy(ws, "session", inside, session_env)
        figures["(b) inside, embedded: wall"] = wall_b
        figures["    the run itself"] = run_b
        figures["ratio a's run / b's run (goal <= 1.2)"] = run / run_b
        figures["ratio a's wall / b's wall (a: the first bootstrap included)"] = wall / wall_b
        again, _, _ = deploy(ws, "runner", outside, env)
        figures["    a re-run from outside (healthy cluster), wall"] = again

        follower = lab.spawn("runner", [sys.executable, "-c", FOLLOW,
                                        "http://outside-control.ml.lab", TOKEN],
                             env=env, cwd=str(ROOT), stdout=subprocess.PIPE)
        deploy(ws, "runner", outside, {**env, "RAY_NUM_WORKERS": "3"})
        out, _ = follower.communicate(timeout=300)
        latencies = sorted(json.loads(out.decode().strip().splitlines()[-1]))
        figures[f"(c) events to the outside client: {len(latencies)}, p50 (s)"] = \
            statistics.median(latencies)
        figures["    p99 (s) (goal < 1)"] = latencies[int(0.99 * (len(latencies) - 1))]
        ws.stop()
    finally:
        lab.down()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

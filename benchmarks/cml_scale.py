#!/usr/bin/env python3
"""Growing from 0 to 16 workers on CML (the simulator, 2 s application start delay): our
concurrent launch against a one-at-a-time launch, in one run.

Each "worker" is a tiny script app (not Ray, so 16 fit this machine). A launch counts as done
when the application is APPLICATION_RUNNING, as CML reports it.

    python benchmarks/cml_scale.py [--workers 16] [--start-delay 2]
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import processes  # noqa: E402
from cluster.config import parse_config  # noqa: E402
from cluster.platforms.base import RUNNING, AppSpec  # noqa: E402
from cluster.platforms.cml import CMLPlatform  # noqa: E402
from cluster.platforms.cml.client import CMLClient  # noqa: E402

KEY = "bench-key-0123456789"


def wait_running(platform: CMLPlatform, app_id: str) -> None:
    while platform.get_app(app_id).status != RUNNING:
        time.sleep(0.1)


def launch(platform: CMLPlatform, names: list[str], concurrent: bool) -> float:
    def one(name: str) -> None:
        app = platform.create_app(AppSpec(name=name, script="worker.py", cpu=1, memory=1))
        wait_running(platform, app.id)
    start = time.monotonic()
    if concurrent:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(one, names))
    else:
        for name in names:
            one(name)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--start-delay", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cml-bench-") as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        sim = subprocess.Popen([sys.executable, "-m", "cml_simulator", "--port", str(port),
                                "--api-key", KEY, "--state-dir", tmp,
                                "--app-start-delay", str(args.start_delay)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    requests.get(url + "/_sim/counts", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            config = parse_config({"platform": "cml", "cluster_name": "bench",
                                   "cml": {"host": url, "api_key": KEY}}, environ={})
            platform = CMLPlatform(config, CMLClient(url, KEY))
            project = platform.create_project("bench")
            worker = Path(tmp) / "projects" / project.id / "worker.py"
            worker.parent.mkdir(parents=True, exist_ok=True)
            worker.write_text("import time\nwhile True: time.sleep(1)\n")
            figures = {}
            for mode, concurrent in (("one at a time", False), ("concurrent", True)):
                names = [f"bench-{mode[:3]}-{i}" for i in range(1, args.workers + 1)]
                figures[mode] = launch(platform, names, concurrent)
                for app in platform.list_apps():
                    platform.delete_app(app.id)
            seq, con = figures["one at a time"], figures["concurrent"]
            print(f"{args.workers} workers, app start delay {args.start_delay:.0f} s")
            print(f"one at a time: {seq:6.2f} s")
            print(f"concurrent   : {con:6.2f} s")
            print(f"speed-up     : {seq / con:.1f}x  (goal >= 6x)")
        finally:
            processes.stop_session(sim.pid, grace_seconds=5)
            sim.wait()


if __name__ == "__main__":
    main()

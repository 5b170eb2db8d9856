"""The simulator in a process of its own, for tests and benchmarks: ``python -m
cml_simulator`` on a free loopback port, ready once it answers; ``stop`` ends it and every
app process it started (also those it could not stop itself)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cluster import processes
from cluster.platforms.local import stop_recorded_apps

ROOT = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    def __init__(self, state_dir: Path, *flags: str, api_key: str, env: dict | None = None,
                 ready_seconds: float = 30, stop_seconds: float = 30):
        """``env``: the simulator's environment (default: this one without CML_* variables);
        ``stop_seconds``: how long it may take to stop its apps before it is killed."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = Path(state_dir)
        self.stop_seconds = stop_seconds
        if env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CML_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cml_simulator", "--port", str(self.port),
             "--api-key", api_key, "--state-dir", str(self.state_dir), *flags],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                requests.get(self.url + "/_sim/counts", timeout=1)
                return
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the CML simulator did not start on {self.url}") from None
                time.sleep(0.1)

    def counts(self) -> dict:
        """Not CML: what a test counts (projects, jobs, apps, injected faults, requests)."""
        return requests.get(self.url + "/_sim/counts", timeout=30).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            processes.stop_session(self.proc.pid, grace_seconds=self.stop_seconds)
        self.proc.wait()
        for store_dir in (self.state_dir / "platform").glob("*"):  # app processes it left
            stop_recorded_apps(store_dir)

"""The simulator in a process of its own, for tests and benchmarks: ``python -m
cml_simulator`` on a free loopback port, ready once it answers; ``stop`` ends it and every
app process it started (also those it could not stop itself). ``LabWorkspace``: the same in
pods mode, as the edge of a workspace in a lab."""
from __future__ import annotations

import json
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


# A workspace in a lab: the probe a host runs to wait for a URL (one process, many tries)
WAIT_FOR_URL = """
import sys, time, requests
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        requests.get(sys.argv[1], timeout=2)
        break
    except requests.RequestException:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.1)
"""


class LabWorkspace:
    """A CML workspace in a lab (see lab/ and cml_simulator/pods.py): the edge host runs the
    simulator in pods mode (the CML API at ``http://<domain>``, apps at
    ``http://<subdomain>.<domain>``), every app and job run is a pod on the workspace
    network ``ws`` (198.18.0.0/24), and ``runner`` stands for a CI runner: it is on the
    ``out`` network (198.19.0.0/24) with the edge only, so it reaches the edge and no pod.
    ``runner_dirs``: what the runner sees besides the shared image (at the same paths)."""

    def __init__(self, lab, state_dir: Path, *flags: str, api_key: str, domain: str = "ml.lab",
                 runner_dirs: tuple[str, ...] = (), ready_seconds: float = 30):
        self.lab, self.domain, self.api_key = lab, domain, api_key
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.url = f"http://{domain}"
        lab.add_network("ws", "198.18.0.0/24")
        lab.add_network("out", "198.19.0.0/24")
        lab.add_host("edge", ["ws", "out"],
                     dirs={str(self.state_dir): str(self.state_dir), str(lab.dir): str(lab.dir)})
        lab.add_host("runner", ["out"], dirs={d: d for d in runner_dirs})
        self.log = self.state_dir / "edge.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root",
               "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.proc = lab.spawn("edge", [sys.executable, "-m", "cml_simulator", "--pods", lab.id,
                                           "--host", "0.0.0.0", "--port", "80", "--domain", domain,
                                           "--api-key", api_key, "--state-dir", str(self.state_dir),
                                           *flags], env=env, cwd=str(ROOT), stdout=log,
                                  note="CML simulator (the workspace's edge)")
        if not self.wait_for(f"{self.url}/_sim/counts", ready_seconds):
            self.stop()
            raise RuntimeError(f"the CML simulator did not answer at {self.url}:\n"
                               + self.log.read_text(errors="replace")[-2000:])

    def runner(self, argv: list[str], *, env: dict | None = None, cwd: str | None = None,
               timeout: float = 600):
        """A command on the runner (outside the workspace): a CompletedProcess."""
        return self.lab.run("runner", argv, env=env, cwd=cwd or str(ROOT), timeout=timeout)

    def wait_for(self, url: str, seconds: float, host: str = "runner") -> bool:
        """Whether ``url`` answered (any status) from ``host`` within ``seconds``."""
        probe = self.lab.run(host, [sys.executable, "-c", WAIT_FOR_URL, url, str(seconds)],
                             env={"PATH": "/usr/bin:/bin"}, cwd=str(ROOT), timeout=seconds + 30)
        return probe.returncode == 0

    def counts(self) -> dict:
        code = ("import json, sys, requests\n"
                "print(json.dumps(requests.get(sys.argv[1], timeout=30).json()))")
        result = self.runner([sys.executable, "-c", code, f"{self.url}/_sim/counts"])
        if result.returncode != 0:
            raise RuntimeError(f"/_sim/counts: {result.stderr[-500:]}")
        return json.loads(result.stdout)

    def stop(self) -> None:
        """Stop the simulator (it stops its apps; the lab's ``down`` stops what is left)."""
        if self.proc.poll() is None:
            processes.stop_session(self.proc.pid, grace_seconds=10)
        self.proc.wait()
        for store_dir in (self.state_dir / "platform").glob("*"):
            stop_recorded_apps(store_dir)

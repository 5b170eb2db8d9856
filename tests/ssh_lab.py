"""A lab of SSH hosts for the ssh platform's tests: hosts that each run their own sshd on the
lab network (key auth, host keys made for this lab), and ``ops``, the host the deployer runs
on (the machine an operator or a CI runner deploys from). The test process, outside the lab,
reaches none of the hosts: it runs the CLI (and any check that needs the network) in ops."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lab import Lab
from lab.ssh import SSHKeys, add_ssh_host
from tests.conftest import ROOT, write_config

PY = sys.executable
ENV = {"PATH": f"{Path(PY).parent}:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
       "PYTHONUNBUFFERED": "1"}

# run in ops: facts about a cluster of a config, as JSON (what a test asserts on)
FACTS = '''
import json, sys
from checkpoints.factory import make_context
from cluster.config import load_config
ctx = make_context(load_config(sys.argv[1]))
inventory, platform = ctx.cluster.inventory, ctx.platform
apps = inventory.apps()
run = ctx.store.runs.latest_run()
jobs = {j.name: [[r.spec_hash, r.status, r.finished] for r in platform.job_runs(j.id)]
        for j in platform.list_jobs()}
records = {r["name"]: r["host"] for r in ctx.store.platform_records.apps()}
try:
    alive = sorted(inventory.alive_ips())
except Exception as e:
    alive = str(e)
print(json.dumps({"run": run.status.value if run else None,
                  "apps": {a.name: {"status": a.status, "ip": a.ip, "host": records.get(a.name)}
                           for a in apps},
                  "alive": alive, "jobs": jobs}))
'''


class SSHLab:
    """SSH hosts on the lab network ``lan`` and the ops host; files under ``work`` (seen
    by ops at the same path)."""

    def __init__(self, lab: Lab, work: Path, runner: bool = False):
        """``runner``: also a host ``ci`` (a CI runner) on a network of its own, ``ci``,
        that only ops shares: it reaches ops, never the hosts."""
        self.lab, self.work = lab, work
        self.keys = SSHKeys.make(work / "ssh")
        lab.add_network("lan", "198.18.0.0/24")
        if runner:
            lab.add_network("ci", "198.18.1.0/24")
        lab.add_host("ops", ["lan", "ci"] if runner else ["lan"], dirs={str(work): str(work)})
        if runner:
            lab.add_host("ci", ["ci"], dirs={str(work): str(work)})

    def add(self, name: str, **kwargs):
        return add_ssh_host(self.lab, name, self.keys, networks=("lan",), **kwargs)

    def address(self, name: str) -> str:
        return self.lab.host(name).addresses["lan"]

    def config(self, name: str, hosts: list[str], workers: int | None = None, **extra) -> dict:
        """A cluster ``name`` on ``hosts`` (the first is the head); one worker per other host."""
        ssh = {"hosts": [{"name": h, "address": self.address(h) if h in self.lab.hosts()
                          else h, **({"role": "head"} if i == 0 else {})}
                         for i, h in enumerate(hosts)],
               "user": "root", "identity_file": str(self.keys.identity),
               "known_hosts": str(self.keys.known_hosts), "python": PY}
        config = {"cluster_name": name, "platform": "ssh", "state_dir": str(self.work / name),
                  "project_dir": str(ROOT), "jobs_config": str(ROOT / "jobs_config.yaml"),
                  "ssh": ssh, "head": {"cpu": 1, "memory": 1},
                  "workers": {"count": len(hosts) - 1 if workers is None else workers,
                              "cpu": 1, "memory": 1},
                  "serve": {"applications": [{"name": "hello",
                                              "import_path": "examples.apps.hello:app",
                                              "route_prefix": "/hello"}],
                            "management_api": {"enabled": False}}}
        for key, value in extra.items():
            config[key] = value
        return config

    def write(self, config: dict) -> Path:
        return write_config(self.work / f"{config['cluster_name']}.yaml", config)

    def cli(self, *args: str, config: Path, env: dict | None = None, timeout: float = 600,
            host: str = "ops") -> subprocess.CompletedProcess:
        """deploy_master.py in ops (or ``host``)."""
        return self.lab.run(host, [PY, str(ROOT / "deploy_master.py"), "--config", str(config),
                                   *args], cwd=str(ROOT), env={**ENV, **(env or {})},
                            timeout=timeout)

    def python(self, code: str, *args: str, timeout: float = 120,
               env: dict | None = None) -> subprocess.CompletedProcess:
        return self.lab.run("ops", [PY, "-c", code, *args], cwd=str(ROOT),
                            env={**ENV, **(env or {})}, timeout=timeout)

    def facts(self, config: Path) -> dict:
        done = self.python(FACTS, str(config))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def processes(self, host: str) -> list[tuple[int, int, str]]:
        """(pid, session, command) of what runs on ``host`` beyond the lab's anchor and
        sshd (with the sessions sshd serves)."""
        network = os.stat(f"/proc/{self.lab.host(host).anchor}/ns/net").st_ino
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino != network:
                    continue
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            text = command.decode(errors="replace").strip()
            if fields[0] == "Z" or int(entry) == self.lab.host(host).anchor:
                continue
            if text.startswith(("/usr/sbin/sshd", "sshd:")):
                continue
            found.append((int(entry), int(fields[3]), text[:160]))
        return found

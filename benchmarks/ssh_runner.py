#!/usr/bin/env python3
"""What the ssh platform's command runner costs, on lab hosts with their own sshd (needs root):

(a) a command on a host through its shared connection (the runner: one ControlMaster per
    host, opened once), N times;
(b) the same command with a new SSH connection each time (what a runner without connection
    sharing pays: key exchange and authentication per command);
(c) start a long-lived process and stop it by its record (the helper on the host, twice).

Prints each median in ms and the ratio b/a. Nothing leaves the lab.

    python benchmarks/ssh_runner.py [--times 20]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import Lab, available  # noqa: E402
from lab.machine import image_in_tmp  # noqa: E402
from lab.ssh import SSHKeys, add_ssh_host  # noqa: E402

DRIVER = '''
import json, statistics, subprocess, sys, time
from cluster.platforms.ssh.runner import Host, SSHRunner
known_hosts, identity, address, times = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host = Host("h1", address)
runner = SSHRunner(known_hosts, identity)
runner.run(host, ["true"])  # the shared connection, opened once
def timed(step):
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000
shared = timed(lambda: runner.run(host, ["true"]))
fresh_argv = ["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
              "-o", f"UserKnownHostsFile={known_hosts}", "-o", f"IdentityFile={identity}",
              "-o", "IdentitiesOnly=yes", "-o", "ControlPath=none", f"root@{address}", "true"]
fresh = timed(lambda: subprocess.run(fresh_argv, check=True, capture_output=True))
def start_stop():
    process = runner.start(host, ["sleep", "60"], "/tmp/bench.log")
    runner.stop(host, process, grace_seconds=2)
lifecycle = timed(start_stop)
runner.close()
print(json.dumps({"shared_ms": shared, "fresh_ms": fresh, "start_stop_ms": lifecycle}))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=20)
    args = parser.parse_args()
    reason = available()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    keys = SSHKeys.make(Path(tempfile.mkdtemp(prefix="rd-bench-ssh-")))
    lab = Lab.create(owner_pid=os.getpid())
    try:
        lab.add_network("ws", "198.18.0.0/24")
        host = add_ssh_host(lab, "h1", keys)
        lab.add_host("deployer", ["ws"], dirs={str(keys.directory): str(keys.directory)},
                     keep=tuple(image_in_tmp()))
        done = lab.run("deployer", [sys.executable, "-c", DRIVER, str(keys.known_hosts),
                                    str(keys.identity), host.address, str(args.times)],
                       cwd=str(ROOT), timeout=600)
        if done.returncode != 0:
            print(done.stderr)
            return 1
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        lab.down()
    print(f"(a) a command, shared connection:   {figures['shared_ms']:7.1f} ms (median of "
          f"{args.times})")
    print(f"(b) a command, new connection each:  {figures['fresh_ms']:7.1f} ms")
    print(f"    ratio b/a: {figures['fresh_ms'] / figures['shared_ms']:.1f}")
    print(f"(c) start a process and stop it:     {figures['start_stop_ms']:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

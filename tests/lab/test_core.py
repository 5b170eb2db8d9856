"""The lab itself: hosts with their own addresses and private directories, isolated from this
machine's network, processes recorded and stopped, nothing left behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import PREFIX, Lab, cleanup_stale, list_labs
from lab.machine import image_in_tmp
from tests.conftest import ROOT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.lab]

PY = sys.executable


def connect(lab: Lab, host: str, address: str, port: int) -> str:
    """What a TCP connect from ``host`` to address:port gives: "connected" or the error."""
    code = ("import socket\n"
            "try:\n"
            f"    socket.create_connection(({address!r}, {port}), timeout=2).close()\n"
            "    print('connected')\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e.strerror)\n")
    return lab.run(host, [PY, "-c", code]).stdout.strip()


def root_interfaces() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_hosts_reach_each_other_and_nothing_else(new_lab):
    before = root_interfaces()
    lab = new_lab()
    lab.add_network("ws", "198.18.0.0/24")
    lab.add_network("out", "198.19.0.0/24")
    lab.add_host("a", ["ws"])
    lab.add_host("b", ["ws"])
    lab.add_host("edge", ["ws", "out"])
    lab.add_host("runner", ["out"])
    assert root_interfaces() == before  # no veth, no bridge of the lab in the root namespace
    # the machine's own addresses (besides loopback) and anywhere else: no route from any
    # host (asked with `ip route get`, which sends nothing)
    own = [line.split()[3].split("/")[0] for line in subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout.splitlines()
        if not line.split()[3].startswith("127.")]
    for host in lab.hosts():
        routes = lab.run(host, ["ip", "route"]).stdout
        assert "default" not in routes, routes  # no way out of the lab
        for address in [*own, "192.0.2.1"]:  # (TEST-NET-1 stands for the world)
            asked = lab.run(host, ["ip", "route", "get", address])
            assert asked.returncode != 0 and "unreachable" in asked.stderr, (host, address)
    server = lab.spawn("b", [PY, "-c", "import socket,time; s=socket.socket(); "
                                       "s.bind(('0.0.0.0', 7000)); s.listen(); time.sleep(60)"])
    wait_until(lambda: connect(lab, "a", "198.18.0.2", 7000) == "connected", 10, "b listening")
    assert connect(lab, "edge", "198.18.0.2", 7000) == "connected"
    # the runner is on the other network only: the pods' network is not reachable from it
    assert connect(lab, "runner", "198.18.0.2", 7000).startswith("OSError Network is unreachable")
    assert connect(lab, "runner", "198.19.0.1", 7000).startswith("ConnectionRefusedError")
    assert server.poll() is None


def test_a_host_sees_the_directories_it_is_given_and_a_private_tmp_and_home(new_lab, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.txt").write_text("shared\n")
    secret = tmp_path / "deployer-state"
    secret.mkdir()
    lab = new_lab()
    lab.add_network("ws", "198.18.0.0/24")
    lab.add_host("pod", ["ws"], dirs={"/home/cdsw": str(project)})
    look = lab.run("pod", ["sh", "-c", "cat /home/cdsw/data.txt; ls -A /tmp | wc -l; "
                                      f"ls {secret} 2>&1 | head -1; ls -A /home; "
                                      "echo written > /home/cdsw/out.txt; touch /tmp/mine; "
                                      f"{PY} -c 'import ray_probe' 2>&1 | tail -1"],
                   cwd="/home/cdsw")
    lines = look.stdout.splitlines()
    assert lines[0] == "shared"
    assert lines[1] == str(len(image_in_tmp()))  # a /tmp of its own: only the shared image
    assert "No such file or directory" in lines[2]  # the deployer's dirs are not there
    assert lines[3] == "cdsw"
    assert "ModuleNotFoundError" in lines[4]  # the interpreter (the shared image) runs
    assert (project / "out.txt").read_text() == "written\n"  # writes land in the project
    assert not Path("/tmp/mine").exists()  # and the host's /tmp is its own


def root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_processes_are_recorded_in_sessions_and_down_leaves_nothing(new_lab):
    lab = new_lab()
    lab.add_network("ws", "198.18.0.0/24")
    lab.add_host("h1", ["ws"])
    lab.add_host("h2", ["ws"])
    procs = [lab.spawn(h, [PY, "-c", "import subprocess; subprocess.run(['sleep', '300'])"])
             for h in ("h1", "h2")]
    for p in procs:
        assert os.getsid(p.pid) == p.pid  # a session of its own
    assert {p["pid"] for p in lab.processes()} == {p.pid for p in procs}
    inodes = lab.namespace_inodes()
    anchors = [h.anchor for h in lab.hosts().values()]
    names = [lab.state["switch"], *(h.netns for h in lab.hosts().values())]
    lab_dir = lab.dir
    ports = ("ws-h1", "ws-h2", "br-ws")  # the veth ends and the bridge, in the switch
    switch_links = subprocess.run(["ip", "-n", lab.state["switch"], "-o", "link"],
                                  capture_output=True, text=True).stdout
    assert all(port in switch_links for port in ports)  # (so the names looked for are right)
    assert not any(port in root_links() for port in ports)  # none of them in the root
    started = time.monotonic()
    lab.down()
    took = time.monotonic() - started
    for p in procs:
        p.wait(timeout=5)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
    assert not lab_dir.exists()
    for pid in anchors:
        assert not Path(f"/proc/{pid}").exists()
    # no veth or bridge of it anywhere, no mount of it left (its netns files, its dirs)
    assert not any(port in root_links() for port in ports)
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not any(name in mounts for name in names) and str(lab_dir) not in mounts
    # no process anywhere is still in one of the lab's network namespaces, and no mount
    # namespace of a host survives (each died with the last process in it)
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert os.stat(f"/proc/{entry}/ns/net").st_ino not in inodes
        except (FileNotFoundError, PermissionError):  # gone, or not ours to look at
            pass
    assert took < 5, f"down took {took:.1f}s"


def test_a_lab_whose_owner_was_killed_is_found_and_removed(lab_ready, tmp_path):
    script = ("import os, time; from lab import Lab\n"
              "lab = Lab.create(owner_pid=os.getpid())\n"
              "lab.add_network('ws', '198.18.0.0/24'); lab.add_host('h', ['ws'])\n"
              "lab.spawn('h', ['sleep', '300'])\n"
              "print(lab.id, flush=True); time.sleep(300)\n")
    owner = subprocess.Popen([PY, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    lab_id = owner.stdout.readline().strip()
    try:
        assert lab_id in list_labs()
        assert lab_id not in cleanup_stale()  # its owner lives: not stale
        owner.kill()  # the test run is killed
        owner.wait()
        down = subprocess.run([PY, "-m", "lab", "down", "--stale"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)  # as a person would
        assert down.returncode == 0 and lab_id in down.stdout, down.stdout + down.stderr
        assert lab_id not in list_labs()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{PREFIX}{lab_id}" not in listed
    finally:
        if owner.poll() is None:
            owner.kill()
        if lab_id in list_labs():
            Lab.open(lab_id).down()


def test_two_labs_at_once_do_not_clash(new_lab):
    one, two = new_lab(), new_lab()
    for lab in (one, two):
        lab.add_network("ws", "198.18.0.0/24")
        lab.add_host("h", ["ws"])  # same names, same addresses: separate namespaces
    assert one.host("h").netns != two.host("h").netns
    one.spawn("h", [PY, "-c", "import socket,time; s=socket.socket(); "
                              "s.bind(('198.18.0.1', 7001)); s.listen(); time.sleep(60)"])
    wait_until(lambda: connect(one, "h", "198.18.0.1", 7001) == "connected", 10, "listener")
    assert connect(two, "h", "198.18.0.1", 7001).startswith("ConnectionRefusedError")


def test_python_m_lab_up_status_exec_down(lab_ready):
    def lab_cli(*args):
        return subprocess.run([PY, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    up = lab_cli("up", "--hosts", "2")
    assert up.returncode == 0, up.stderr
    lab_id = up.stdout.split()[1].rstrip(":")
    try:
        status = lab_cli("status", lab_id)
        assert json.loads(status.stdout)["hosts"]["h2"]["addresses"] == {"ws": "198.18.0.2"}
        run = lab_cli("exec", lab_id, "h2", "--", "ip", "-4", "-o", "addr", "show", "eth0")
        assert "198.18.0.2/24" in run.stdout
        assert lab_cli("down", lab_id).returncode == 0
        assert lab_id not in list_labs()
        assert lab_cli("exec", lab_id, "h1", "--", "true").returncode != 0
    finally:
        if lab_id in list_labs():
            Lab.open(lab_id).down()


def test_a_ray_cluster_forms_across_hosts_on_default_ports(new_lab):
    lab = new_lab()
    lab.add_network("ws", "198.18.0.0/24")
    lab.add_host("head", ["ws"])
    lab.add_host("worker", ["ws"])
    ray = str(Path(PY).with_name("ray"))
    env = {"PATH": f"{Path(PY).parent}:/usr/bin:/bin", "HOME": "/root",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": "lab-token-0123456789abcdef"}
    common = ["start", "--block", "--num-cpus=1", "--memory=1000000000",
              "--object-store-memory=100000000", "--disable-usage-stats"]
    lab.spawn("head", [ray, *common, "--head", "--node-ip-address=198.18.0.1",
                       "--dashboard-host=198.18.0.1"], env=env)
    lab.spawn("worker", [ray, *common, "--address=198.18.0.1:6379",
                         "--node-ip-address=198.18.0.2"], env=env)
    probe = ("import requests\n"
             "r = requests.get('http://198.18.0.1:8265/api/v0/nodes?detail=true', timeout=3,\n"
             "                 headers={'Authorization': 'Bearer lab-token-0123456789abcdef'})\n"
             "rows = r.json()['data']['result']['result']\n"
             "print(sorted(n['node_ip'] for n in rows if n['state'] == 'ALIVE'))\n")

    def alive():
        out = lab.run("head", [PY, "-c", probe], env=env).stdout.strip()
        return out == "['198.18.0.1', '198.18.0.2']"
    wait_until(alive, 120, "head and worker ALIVE across hosts", interval=1)

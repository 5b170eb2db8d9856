"""The simulator in pods mode, in a lab: every app is a pod with its own address and its
project at /home/cdsw, the edge serves the CML API and apps' public URLs (with the
workspace's credentials unless an app bypasses them), a runner outside the workspace reaches
the edge and no pod, Ray forms a cluster across pods on its default ports, and nothing of
it is left once the lab is down."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cml_simulator.running import LabWorkspace
from lab.machine import image_in_tmp
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.lab]

KEY = "lab-sim-key-0123456789"
PY = sys.executable

# An app that tells what it sees, on 127.0.0.1:$CDSW_APP_PORT (where CML forwards its URL)
FACTS_APP = '''
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Facts(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"ip": os.environ.get("CDSW_IP_ADDRESS"), "cwd": os.getcwd(),
                           "home": sorted(os.listdir("/home/cdsw")),
                           "tmp": sorted(os.listdir("/tmp")),
                           "visible": {p: os.path.exists(p) for p in os.environ["HIDDEN"].split(":")},
                           "env": sorted(os.environ),
                           "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", int(os.environ["CDSW_APP_PORT"])), Facts).serve_forever()
'''

# What the runner does through the CML API (the client of the project), as a script
CLIENT = '''
import json, sys, time
from cluster.platforms.cml.client import CMLClient
cml = CMLClient(sys.argv[1], sys.argv[2])
def wait(path, key, value, what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        item = cml.request("GET", path, what)
        if item.get(key) == value:
            return item
        assert time.monotonic() < deadline, f"{what}: {item.get(key)}"
        time.sleep(0.2)
'''


def runner_script(ws: LabWorkspace, body: str, *args: str, timeout: float = 300) -> dict:
    """Run ``CLIENT + body`` on the runner; it prints one JSON line as its answer."""
    result = ws.runner([PY, "-c", CLIENT + body, ws.url, KEY, *args], timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def workspace(new_lab, tmp_path):
    ci = tmp_path / "ci"
    ci.mkdir()
    ws = LabWorkspace(new_lab(), tmp_path / "sim", api_key=KEY, runner_dirs=(str(ci),))
    ws.ci = ci
    yield ws
    ws.stop()


def test_apps_are_pods_behind_the_edge_and_the_runner_reaches_only_the_edge(workspace):
    ws = workspace
    hidden = [str(ws.state_dir), str(ws.ci)]  # the simulator's and the runner's directories
    (ws.ci / "facts.py").write_text(FACTS_APP)
    out = runner_script(ws, '''
import requests
runtime = cml.runtimes()[0]["image_identifier"]
project = cml.request("POST", "/projects", "project", json={"name": "pods", "template": "blank"})
pid = project["id"]
with open(sys.argv[3] + "/facts.py", "rb") as f:
    cml.request("POST", f"/projects/{pid}/files", "upload", files={"facts.py": ("facts.py", f.read())})
apps = {}
for name, bypass in (("private", False), ("public", True)):
    apps[name] = cml.request("POST", f"/projects/{pid}/applications", name, json={
        "name": name, "subdomain": name, "script": "facts.py", "cpu": 1, "memory": 1,
        "runtime_identifier": runtime, "bypass_authentication": bypass,
        "environment": {"HIDDEN": ":".join(sys.argv[4:])}})
for name, app in apps.items():
    wait(f"/projects/{pid}/applications/{app['id']}", "status", "APPLICATION_RUNNING", name)
def get(url, **kw):
    for _ in range(100):  # the app's server may take a moment to listen
        r = requests.get(url, timeout=5, **kw)
        if r.status_code != 503 and r.status_code != 502:
            return r
        time.sleep(0.1)
    return r
auth = {"Authorization": "Bearer " + sys.argv[2]}
private_without = get("http://private.ml.lab/")
private = get("http://private.ml.lab/", headers=auth)
public = get("http://public.ml.lab/")
facts = private.json()
import socket
try:
    socket.create_connection((facts["ip"], 8100), timeout=2)
    pod_reach = "connected"
except OSError as e:
    pod_reach = e.strerror
print(json.dumps({"private_without": private_without.status_code, "private": private.status_code,
                  "public": public.status_code, "facts": facts, "public_facts": public.json(),
                  "pod_reach": pod_reach}))
''', str(ws.ci), *hidden)
    assert out["private_without"] == 401  # the workspace's credentials are wanted first
    assert out["private"] == 200 and out["public"] == 200  # bypass_authentication: none needed
    facts = out["facts"]
    assert facts["authorization"] is None  # the workspace's key never reaches the app
    assert out["public_facts"]["ip"] != facts["ip"]
    assert facts["ip"].startswith("198.18.0.")  # its own address on the workspace network
    assert out["pod_reach"] == "Network is unreachable"  # the runner is outside the workspace
    assert facts["cwd"] == "/home/cdsw" and "facts.py" in facts["home"]
    assert facts["tmp"] == image_in_tmp()  # its own /tmp (the shared image stays visible)
    assert facts["visible"] == {path: False for path in hidden}  # nothing else of this machine
    env = set(facts["env"])
    assert {"CDSW_IP_ADDRESS", "CDSW_APP_PORT", "CDSW_APIV2_KEY", "CDSW_DOMAIN",
            "CDSW_PROJECT_ID", "CDSW_API_URL"} <= env
    assert not env & set(os.environ) - {"PATH", "HOME", "LANG"}  # not the deployer's
    counts = ws.counts()
    assert counts["applications"] == 2


JOB_FACTS = '''
import json, os, socket
json.dump({"ip": os.environ.get("CDSW_IP_ADDRESS"), "cwd": os.getcwd(),
           "home": sorted(os.listdir("/home/cdsw")), "tmp": sorted(os.listdir("/tmp")),
           "visible": {p: os.path.exists(p) for p in os.environ["HIDDEN"].split(":")},
           "env": sorted(os.environ), "host": socket.gethostname()},
          open("/home/cdsw/job-facts.json", "w"))
'''


def test_a_job_run_is_a_pod_of_its_own_that_sees_the_project(workspace):
    ws = workspace
    hidden = [str(ws.state_dir), str(ws.ci)]
    (ws.ci / "job_facts.py").write_text(JOB_FACTS)
    out = runner_script(ws, '''
runtime = cml.runtimes()[0]["image_identifier"]
pid = cml.request("POST", "/projects", "p", json={"name": "jobs", "template": "blank"})["id"]
with open(sys.argv[3] + "/job_facts.py", "rb") as f:
    cml.request("POST", f"/projects/{pid}/files", "upload",
                files={"job_facts.py": ("job_facts.py", f.read())})
job = cml.request("POST", f"/projects/{pid}/jobs", "job", json={
    "name": "facts", "script": "job_facts.py", "cpu": 1, "memory": 1, "runtime_identifier": runtime,
    "environment": {"HIDDEN": ":".join(sys.argv[4:])}})
run = cml.request("POST", f"/projects/{pid}/jobs/{job['id']}/runs", "run", json={})
wait(f"/projects/{pid}/jobs/{job['id']}/runs/{run['id']}", "status", "ENGINE_SUCCEEDED", "run")
facts = cml.request("POST", f"/projects/{pid}/files/job-facts.json:download", "facts")
print(json.dumps(json.loads(facts)))
''', str(ws.ci), *hidden)
    assert out["ip"].startswith("198.18.0.")  # an address of its own on the workspace network
    assert out["cwd"] == "/home/cdsw" and "job_facts.py" in out["home"]
    assert out["tmp"] == sorted(["cml-job", *image_in_tmp()])  # its own /tmp: the run dir
    assert out["visible"] == {path: False for path in hidden}
    env = set(out["env"])
    assert {"CDSW_IP_ADDRESS", "CDSW_APIV2_KEY", "CDSW_DOMAIN", "CDSW_PROJECT_ID"} <= env
    assert not env & set(os.environ) - {"PATH", "HOME", "LANG"}  # not the deployer's
    hosts = ws.lab.hosts()
    assert out["ip"] not in hosts["edge"].addresses.values()  # not the edge's: a pod's own


PROBE_APP = '''
import json, os, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
class Probe(BaseHTTPRequestHandler):
    def do_GET(self):
        head = open("/home/cdsw/.raydeploy_files/head_address").read().split(":")[0]
        ask = urllib.request.Request(f"http://{head}:8265/api/v0/nodes?detail=true",
                                     headers={"Authorization": "Bearer " + os.environ["RAY_AUTH_TOKEN"]})
        rows = json.load(urllib.request.urlopen(ask, timeout=5))["data"]["result"]["result"]
        body = json.dumps(sorted([n["node_ip"], n["state"]] for n in rows)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", int(os.environ["CDSW_APP_PORT"])), Probe).serve_forever()
'''


def test_a_ray_cluster_forms_across_pods_on_default_ports(workspace):
    """The launcher as a CML app would run it: the head publishes its pod address in the
    project, a worker joins it on Ray's default ports, both ALIVE (asked from a third pod)."""
    ws = workspace
    (ws.ci / "probe.py").write_text(PROBE_APP)
    token = "lab-ray-token-0123456789"
    ray_args = json.dumps({"num_cpus": 1, "memory": 10**9, "object_store_memory": 10**8})
    out = runner_script(ws, '''
import requests
runtime = cml.runtimes()[0]["image_identifier"]
project = cml.request("POST", "/projects", "project", json={"name": "ray", "template": "git",
                                                             "git_url": sys.argv[3]})
pid = project["id"]
wait(f"/projects/{pid}", "creation_status", "success", "clone")
with open(sys.argv[4] + "/probe.py", "rb") as f:
    cml.request("POST", f"/projects/{pid}/files", "upload", files={"probe.py": ("probe.py", f.read())})
env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": sys.argv[5], "RAYDEPLOY_RAY_ARGS": sys.argv[6],
       "RAYDEPLOY_NODE_ADDRESS_FROM": "CDSW_IP_ADDRESS"}  # as the CML platform sets it
def app(name, script, **extra):
    made = cml.request("POST", f"/projects/{pid}/applications", name, json={
        "name": name, "subdomain": name, "script": script, "cpu": 1, "memory": 1,
        "runtime_identifier": runtime, "bypass_authentication": True,
        "environment": {**env, **extra}})
    return wait(f"/projects/{pid}/applications/{made['id']}", "status", "APPLICATION_RUNNING", name)
app("head", "cluster/launcher.py", RAYDEPLOY_ROLE="head", RAYDEPLOY_APP_NAME="head")
deadline = time.monotonic() + 60
while True:
    try:
        head = cml.request("POST", f"/projects/{pid}/files/.raydeploy_files/head_address:download", "head")
        break
    except Exception:
        assert time.monotonic() < deadline
        time.sleep(0.5)
head = head.decode()
app("worker", "cluster/launcher.py", RAYDEPLOY_ROLE="worker", RAYDEPLOY_APP_NAME="worker",
    RAY_HEAD_ADDRESS=head)
app("probe", "probe.py")
deadline = time.monotonic() + 180
while True:
    try:
        nodes = requests.get("http://probe.ml.lab/", timeout=10).json()
        if [state for _, state in nodes] == ["ALIVE", "ALIVE"]:
            break
    except (requests.RequestException, ValueError):
        nodes = None
    assert time.monotonic() < deadline, nodes
    time.sleep(1)
print(json.dumps({"head": head, "nodes": nodes}))
''', str(ROOT), str(ws.ci), token, ray_args, timeout=400)
    head_ip, port = out["head"].split(":")
    assert port == "6379"  # Ray's default GCS port: every pod has its own network
    ips = [ip for ip, _ in out["nodes"]]
    assert head_ip in ips and len(set(ips)) == 2 and all(ip.startswith("198.18.0.") for ip in ips)


def test_nothing_is_left_once_the_lab_is_down(new_lab, tmp_path):
    lab = new_lab()
    ci = tmp_path / "ci"
    ci.mkdir()
    (ci / "sleep.py").write_text("import subprocess\nsubprocess.run(['sleep', '600'])\n")
    ws = LabWorkspace(lab, tmp_path / "sim", api_key=KEY, runner_dirs=(str(ci),))
    runner_script(ws, '''
runtime = cml.runtimes()[0]["image_identifier"]
pid = cml.request("POST", "/projects", "p", json={"name": "p", "template": "blank"})["id"]
with open(sys.argv[3] + "/sleep.py", "rb") as f:
    cml.request("POST", f"/projects/{pid}/files", "upload", files={"sleep.py": ("sleep.py", f.read())})
made = cml.request("POST", f"/projects/{pid}/applications", "a", json={
    "name": "a", "subdomain": "a", "script": "sleep.py", "cpu": 1, "memory": 1,
    "runtime_identifier": runtime})
wait(f"/projects/{pid}/applications/{made['id']}", "status", "APPLICATION_RUNNING", "a")
print(json.dumps(made["id"]))
''', str(ci))
    inodes = lab.namespace_inodes()
    assert len(inodes) == 4  # the switch, the edge, the runner, the app's pod
    pods = [h for h in lab.hosts() if h.startswith("p-")]
    assert len(pods) == 1 and len(lab.processes(pods[0])) == 2  # the app and its CML proxy
    ws.stop()
    lab.down()
    listed = [line.split()[0] for line in os.popen("ip netns list").read().splitlines() if line]
    assert not [n for n in listed if n.startswith(f"rdlab-{lab.id}")]
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert os.stat(f"/proc/{entry}/ns/net").st_ino not in inodes, Path(
                f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, PermissionError):
            pass

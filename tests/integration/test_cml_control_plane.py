"""The seeds' main flow, proven in the lab: a CI runner outside a CML workspace (it reaches
only the workspace's edge) runs the `run:` steps of examples/github-actions/deploy-ray-cluster.yml
with the secrets as environment. The deploy step bootstraps the control plane (an app in a
project of its own, which the cluster's pods cannot see), which runs the deploy inside the
workspace: head and two workers in pods on Ray's
default ports, the apps serving, validation passing. Fewer workers stop the workflow with
exit 3 and the impact shown; two approvers approve through the public URL (REST, and the
inbox in Chromium), the same run goes on; the re-run follows it. A control plane killed with
kill -9 mid-run is restarted by the platform and continues the run: no second head, no job
run twice. A second deploy meanwhile is refused by the lease; bad tokens and another
cluster's config are one clear line."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cluster import processes
from cml_simulator.running import LabWorkspace
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.lab]

KEY = "lab-cml-key-0123456789ab"
PY = sys.executable
TOKENS = {"ci": ("operator", "ci-token-0123456789abcdef"),
          "alice": ("approver", "alice-token-0123456789ab"),
          "carol": ("approver", "carol-token-0123456789ab")}
SECRETS = {"CML_HOST": "http://ml.lab", "CML_API_KEY": KEY, "CML_GIT_TOKEN": "",
           "RAYDEPLOY_API_TOKENS": ",".join(f"{p}:{r}:{t}" for p, (r, t) in TOKENS.items()),
           "RAYDEPLOY_TOKEN": TOKENS["ci"][1]}
WORKFLOW = yaml.safe_load((ROOT / "examples/github-actions/deploy-ray-cluster.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")

# What an approver's client does through the public URL (run on the runner)
API = '''
import json, sys, requests
url, token, method, path = sys.argv[1:5]
body = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
answer = requests.request(method, url + path, json=body, timeout=60,
                          headers={"Authorization": f"Bearer {token}"})
json_body = "json" in answer.headers.get("Content-Type", "")
print(json.dumps({"status": answer.status_code, "body": answer.json() if json_body else answer.text}))
'''
INBOX = '''
import sys
from playwright.sync_api import sync_playwright
url, token, checkpoint = sys.argv[1:4]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(url + "/ui/")
    page.fill("#token", token)
    page.click("#signin")
    page.wait_for_selector("#who:has-text('(')")
    card = page.locator(f"article.gate[data-checkpoint={checkpoint}]")
    card.wait_for(timeout=30000)
    print(card.inner_text())
    card.locator("input.confirm").fill(checkpoint)
    card.locator("input.reason").fill("approved in the inbox")
    card.locator("button.approve").click()
    page.wait_for_selector("article.gate .result:has-text('approved by')", timeout=30000)
    print("RESULT", page.locator("article.gate .result").inner_text())
    browser.close()
'''


def evaluate(expression: str, inputs: dict) -> str:
    """The few workflow expressions the example uses."""
    if expression.startswith("secrets."):
        return SECRETS.get(expression.split(".", 1)[1], "")
    if expression.startswith("inputs.force_rebuild"):
        return "true" if inputs.get("force_rebuild") else "false"
    if expression.startswith("inputs."):
        return str(inputs.get(expression.split(".", 1)[1]) or "")
    if expression == "github.actor":
        return "ci-bot"
    raise AssertionError(f"the test does not know the expression {expression!r}")


class Workflow:
    """The runner: a checkout of the repository with the config for this workspace, and the
    workflow's `run:` steps, run in order as Actions runs them (bash -eo pipefail, stop at
    the first failing step)."""

    def __init__(self, ws: LabWorkspace, ci: Path, runtime: str):
        self.ws, self.ci = ws, ci
        self.checkout = ci / "repo"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(self.checkout)], check=True)
        (self.checkout / "examples" / "cluster.cml.yaml").write_text(yaml.safe_dump({
            "cluster_name": "raylab", "platform": "cml", "state_dir": ".raydeploy-cml",
            "cml": {"project_name": "ray-lab", "git_url": str(ROOT), "runtime_identifier": runtime},
            "head": {"cpu": 1, "memory": 1}, "workers": {"count": 2, "cpu": 1, "memory": 1},
            "serve": {"applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                                        "route_prefix": "/hello"}]},
            "approvals": {"policy": {"worker_launch": {"min_approvals": 2}}}}))
        self.summary = ci / "summary.md"

    def env(self, inputs: dict) -> dict:
        job = WORKFLOW["jobs"]["deploy"]
        env = {"PATH": f"{Path(PY).parent}:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
               "PYTHONUNBUFFERED": "1", "GITHUB_STEP_SUMMARY": str(self.summary)}
        env.update({k: EXPRESSION.sub(lambda m: evaluate(m.group(1), inputs), str(v))
                    for k, v in job["env"].items()})
        return env

    def steps(self, inputs: dict) -> list[tuple[str, list[str]]]:
        out = []
        for step in WORKFLOW["jobs"]["deploy"]["steps"]:
            if "run" in step:
                script = EXPRESSION.sub(lambda m: evaluate(m.group(1), inputs), step["run"])
                out.append((step.get("name", step["run"][:40]),
                            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]))
        return out

    def run(self, **inputs) -> dict:
        """{step name: CompletedProcess} of the steps run (the last one failed, or all)."""
        done = {}
        for name, argv in self.steps(inputs):
            done[name] = result = self.ws.lab.run("runner", argv, env=self.env(inputs),
                                                  cwd=str(self.checkout), timeout=1200)
            if result.returncode != 0:
                break
        return done

    def spawn(self, step: str, **inputs) -> subprocess.Popen:
        argv = dict(self.steps(inputs))[step]
        return self.ws.lab.spawn("runner", argv, env=self.env(inputs), cwd=str(self.checkout),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def cli(self, *args, token: str = "ci", config: str = "examples/cluster.cml.yaml"):
        env = {**self.env({}), "RAYDEPLOY_TOKEN": TOKENS[token][1] if token else ""}
        return self.ws.lab.run("runner", [PY, "deploy_master.py", "--config", config, *args],
                               env=env, cwd=str(self.checkout), timeout=600)

    def api(self, method: str, path: str, token: str = "ci", body: dict | None = None) -> dict:
        argv = [PY, "-c", API, self.url, TOKENS[token][1], method, path]
        result = self.ws.runner(argv + ([json.dumps(body)] if body else []))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def cml(self, method: str, path: str, body: dict | None = None) -> dict:
        argv = [PY, "-c", API, f"{self.ws.url}/api/v2", KEY, method, path]
        result = self.ws.runner(argv + ([json.dumps(body)] if body else []))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["body"]

    @property
    def url(self) -> str:
        return "http://raylab-control.ml.lab"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, lab_ready):
    from lab import Lab
    tmp = tmp_path_factory.mktemp("cmllab")
    lab = Lab.create(owner_pid=os.getpid())
    ci = tmp / "ci"
    ci.mkdir()
    try:
        ws = LabWorkspace(lab, tmp / "sim", api_key=KEY, runner_dirs=(str(ci),))
        runtime = json.loads(ws.runner([PY, "-c", API, f"{ws.url}/api/v2", KEY, "GET",
                                        "/runtimes"]).stdout)["body"]["runtimes"][0]
        flow = Workflow(ws, ci, runtime["image_identifier"])
        flow.first = flow.run()  # the workflow's first run: it makes everything
        yield flow
        ws.stop()
    finally:
        lab.down()


def project_id(flow: Workflow, name: str = "ray-lab") -> str:
    projects = flow.cml("GET", "/projects")["projects"]
    return next(p["id"] for p in projects if p["name"] == name)


def apps(flow: Workflow, project: str = "ray-lab") -> list[dict]:
    pid = project_id(flow, project)
    return flow.cml("GET", f"/projects/{pid}/applications?page_size=100")["applications"]


def control_app(flow: Workflow) -> dict:
    return next(a for a in apps(flow, "ray-lab-control") if a["name"] == "raylab-control")


def job_runs(flow: Workflow) -> dict[str, int]:
    projects = flow.cml("GET", "/projects")["projects"]
    pid = next(p["id"] for p in projects if p["name"] == "ray-lab")
    jobs = flow.cml("GET", f"/projects/{pid}/jobs")["jobs"]
    return {j["name"]: len(flow.cml("GET", f"/projects/{pid}/jobs/{j['id']}/runs")["job_runs"])
            for j in jobs}


def test_the_workflow_deploys_from_outside_through_a_control_plane_inside(workflow):
    steps = workflow.first
    deploy, validate = steps["deploy"], steps.get("validate")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    out = deploy.stdout
    assert "control plane: starting application raylab-control in project ray-lab-control" in out
    assert f"control plane: {workflow.url}" in out
    assert "[8/8] validation" in out and "PASS  nodes_alive            3 of 3 nodes ALIVE" in out
    assert "http:hello" in out and "GET http://198.18.0." in out  # probed from inside
    assert "app hello    : http://raylab-head.ml.lab/hello" in out  # where it is from outside
    # a Ray job ran on every pod (from inside), and the runner is told where jobs run from
    assert "PASS  ray_job" in out and "on each of the 3 nodes" in out
    assert "using the cluster (from inside the workspace: a session or job of" in out
    assert "RAY_AUTH_TOKEN_PATH=/home/cdsw/.raydeploy_files/ray_token" in out
    assert validate is not None and validate.returncode == 0, validate.stdout + validate.stderr
    assert KEY not in out + deploy.stderr and TOKENS["ci"][1] not in out + deploy.stderr
    # the head on Ray's default ports, in a pod the runner cannot reach
    head = re.search(r"head address : (198\.18\.0\.\d+):(\d+)", out)
    assert head and head.group(2) == "6379"
    # the seed tool's requests against the URL the deploy printed
    seed = workflow.ws.runner([PY, "examples/management_api.py", workflow.url],
                              env={**workflow.env({}), "RAYDEPLOY_TOKEN": TOKENS["ci"][1]})
    assert seed.returncode == 0 and seed.stdout.count("ALIVE") == 3, seed.stdout + seed.stderr
    # the app at the head app's URL, behind the workspace's login
    answer = workflow.ws.runner([PY, "-c", API, "http://raylab-head.ml.lab", KEY, "GET", "/hello"])
    assert json.loads(answer.stdout)["body"]["message"] == "hello, world"
    # --status from the runner names the control plane; /metrics is served at its URL
    status = workflow.cli("--status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"control plane: {workflow.url} (cluster raylab on cml)" in status.stdout
    metrics = workflow.api("GET", "/metrics")
    assert metrics["status"] == 200 and 'raydeploy_runs{status="succeeded"}' in metrics["body"]
    # what project members read through the CML API: no token, no key in any app's
    # environment (the control app holds digests; the nodes the Ray token, README says why)
    readable = json.dumps([a.get("environment") for project in ("ray-lab", "ray-lab-control")
                           for a in apps(workflow, project)])
    assert KEY not in readable and "RAYDEPLOY_API_TOKEN_DIGESTS" in readable
    assert not [t for _, t in TOKENS.values() if t in readable]


def test_a_gate_stops_the_workflow_approvers_continue_the_same_run_the_rerun_follows(workflow):
    before = job_runs(workflow)
    stopped = workflow.run(workers="1")
    deploy = stopped["deploy"]
    assert deploy.returncode == 3, deploy.stdout + deploy.stderr
    assert "validate" not in stopped  # the job stopped at the gate
    assert "worker_launch needs DESTRUCTIVE approval" in deploy.stdout
    assert "displaces" in deploy.stdout and f"{workflow.url}/ui/#/inbox" in deploy.stdout
    summary = workflow.summary.read_text()
    assert "worker_launch awaits destructive approval" in summary and "/ui/#/inbox" in summary
    gate = workflow.api("GET", "/api/v1/approvals/worker_launch")["body"]
    assert gate["awaiting"] and gate["min_approvals"] == 2
    run_id = gate["run_id"]
    first = workflow.api("POST", "/api/v1/approvals/worker_launch", token="alice", body={
        "decision": "approve", "plan_fingerprint": gate["plan_fingerprint"], "run_id": run_id,
        "acknowledge_risks": True, "reason": "over REST"})
    assert first["status"] == 201, first
    inbox = workflow.ws.runner([PY, "-c", INBOX, workflow.url, TOKENS["carol"][1],
                                "worker_launch"], timeout=180)
    assert inbox.returncode == 0, inbox.stdout + inbox.stderr
    assert "1 of 2 approvals (alice)" in inbox.stdout and "approved by carol" in inbox.stdout
    again = workflow.run(workers="1")
    assert again["deploy"].returncode == 0 and again["validate"].returncode == 0, \
        again["deploy"].stdout + again["deploy"].stderr
    run = workflow.api("GET", f"/api/v1/deployments/{run_id}")["body"]
    assert run["status"] == "succeeded"  # the run the approvals were given for went on
    runs = workflow.api("GET", "/api/v1/deployments?limit=5")["body"]["deployments"]
    for later in runs[: [r["id"] for r in runs].index(run_id)]:  # any run started since did nothing
        assert all(c["status"] in ("skipped", "succeeded") for c in later["checkpoints"])
        assert [c["checkpoint"] for c in later["checkpoints"] if c["status"] == "succeeded"
                ] in ([], ["validation"])
    workers = [a for a in apps(workflow) if a["name"].startswith("raylab-worker-")]
    assert len(workers) == 1
    assert job_runs(workflow) == before  # no job ran again


def test_a_control_plane_killed_mid_run_is_restarted_and_continues_the_run(workflow):
    before = job_runs(workflow)
    follower = workflow.spawn("deploy", workers="3")  # workers to add: real work
    try:
        run_id = None
        deadline = time.monotonic() + 300
        while run_id is None:  # wait until the run is at worker_launch's apply
            assert time.monotonic() < deadline, "the run did not reach worker_launch"
            answer = workflow.api("GET", "/api/v1/deployments?limit=1")
            assert answer["status"] == 200, answer
            runs = answer["body"]["deployments"]
            current = runs[0] if runs else {}
            steps = {c["checkpoint"]: c["status"] for c in current.get("checkpoints", [])}
            if steps.get("worker_launch") == "running":
                run_id = current["id"]
            time.sleep(0.5)
        # a second deploy of another desired state, from another runner: the lease holds
        second = workflow.ws.lab.run("runner", [PY, "deploy_master.py", "--config",
                                                "examples/cluster.cml.yaml", "--deploy", "--no-wait"],
                                     env={**workflow.env({}), "RAY_NUM_WORKERS": "1"},
                                     cwd=str(workflow.checkout), timeout=600)
        assert second.returncode == 1 and "lease" in second.stderr, second.stdout + second.stderr
        control = next(p for p in workflow.ws.lab.processes()
                       if p["note"].startswith("raylab-control"))
        for pid in processes.session_members(control["pid"]):  # kill -9 the control plane
            os.kill(pid, signal.SIGKILL)
        app = control_app(workflow)
        deadline = time.monotonic() + 30
        while app["status"] != "APPLICATION_FAILED":
            assert time.monotonic() < deadline, app["status"]
            time.sleep(0.5)
            app = control_app(workflow)
        project = project_id(workflow, "ray-lab-control")
        workflow.cml("POST", f"/projects/{project}/applications/{app['id']}:restart")  # the platform
        out, _ = follower.communicate(timeout=600)
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
    assert follower.returncode == 0, out
    run = workflow.api("GET", f"/api/v1/deployments/{run_id}")["body"]
    assert run["status"] == "succeeded"
    events = workflow.api("GET", f"/api/v1/deployments/{run_id}/events?follow=false")["body"]
    assert "run.interrupted" in events and "run.resumed" in events
    names = [a["name"] for a in apps(workflow)]
    assert names.count("raylab-head") == 1  # no second head
    assert len([n for n in names if n.startswith("raylab-worker-")]) == 3
    assert job_runs(workflow) == before  # no job run twice


def test_the_clusters_pods_cannot_see_the_control_planes_files(workflow):
    """Every pod of a project can write the project's files, and the cluster runs its users'
    code: the control plane's store, config and code are in a project of its own. A node's
    pod sees the cluster's project only (and there the Ray token the head left for the
    project's sessions); the control project holds the store."""
    worker = next(p for p in workflow.ws.lab.processes() if p["note"].startswith("raylab-worker-"))
    seen = workflow.ws.lab.run(worker["host"], ["ls", "-a", "/home/cdsw", "/home/cdsw/.raydeploy_files"])
    assert seen.returncode == 0, seen.stderr
    assert ".raydeploy-control" not in seen.stdout and "ray_token" in seen.stdout
    control = workflow.ws.state_dir / "projects" / project_id(workflow, "ray-lab-control")
    cluster = workflow.ws.state_dir / "projects" / project_id(workflow)
    assert (control / ".raydeploy-control" / "state" / "state.db").is_file()
    assert not (cluster / ".raydeploy-control").exists()
    token = cluster / ".raydeploy_files" / "ray_token"
    assert token.stat().st_mode & 0o777 == 0o600


def test_a_config_changed_in_the_control_project_is_refused_and_written_again(workflow):
    """The control app starts only with the config the bootstrap wrote (its digest is in the
    app's environment, which only the CML API changes)."""
    project = project_id(workflow, "ray-lab-control")
    config = workflow.ws.state_dir / "projects" / project / ".raydeploy-control" / "config.yaml"
    written = config.read_text()
    assert "min_approvals: 2" in written
    config.write_text(written.replace("min_approvals: 2", "min_approvals: 1"))  # one approver
    app = control_app(workflow)
    workflow.cml("POST", f"/projects/{project}/applications/{app['id']}:restart")
    deadline = time.monotonic() + 60
    while app["status"] != "APPLICATION_FAILED":
        assert time.monotonic() < deadline, app["status"]
        time.sleep(0.5)
        app = control_app(workflow)
    log = (config.parent / "control.log").read_text()
    assert "is not the config the bootstrap wrote" in log
    workers = str(sum(a["name"].startswith("raylab-worker-") for a in apps(workflow)))
    deploy = workflow.run(workers=workers)["deploy"]  # again: the bootstrap writes it again
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "raylab-control is failed: restarting it" in deploy.stdout
    assert config.read_text() == written


def test_bad_input_is_one_clear_line(workflow, tmp_path):
    wrong = workflow.cli("--status", token=None)
    assert wrong.returncode == 2 and "refused the token" in wrong.stderr
    other = workflow.checkout / "examples" / "other.yaml"
    doc = yaml.safe_load((workflow.checkout / "examples" / "cluster.cml.yaml").read_text())
    other.write_text(yaml.safe_dump({**doc, "cluster_name": "elsewhere"}))
    foreign = workflow.cli("--server", workflow.url, "--status", config="examples/other.yaml")
    assert foreign.returncode == 1 and "cluster names differ" in foreign.stderr
    for result in (wrong, foreign):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

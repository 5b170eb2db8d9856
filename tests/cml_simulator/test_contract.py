"""Contract tests of the CML client against the simulator (a real HTTP server on loopback),
with every answer checked against the public CML API v2 swagger (shared/)."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cluster.platforms.base import PlatformError
from cluster.platforms.cml.client import CMLAuthError, CMLClient, environment_out
from core.errors import NotFound
from tests.cml_simulator.helpers import KEY, Simulator, conforms, runtime_of, write_script

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim"))
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def client(sim):
    return CMLClient(sim.url, KEY, page_size=10, backoff=0.05)


@pytest.fixture(scope="module")
def rt(sim):
    return runtime_of(sim)


@pytest.fixture(scope="module")
def project(client):
    created = client.request("POST", "/projects", "create project contract",
                             json={"name": "contract", "template": "blank"})
    conforms(created, "Project")
    assert client.request("GET", f"/projects/{created['id']}", "get project")["name"] == "contract"
    return created


def test_auth_errors_are_clear_and_never_show_the_key(sim):
    bad = CMLClient(sim.url, "wrong-key-0123456789", retries=0)
    with pytest.raises(CMLAuthError) as info:
        bad.request("GET", "/projects", "list projects")
    assert "list projects" in str(info.value) and "401" in str(info.value)
    assert "wrong-key" not in str(info.value) and "wrong-key" not in repr(bad)
    raw = requests.get(sim.url + "/api/v2/projects", timeout=5)
    assert raw.status_code == 401 and set(raw.json()) == {"error", "code", "message", "details"}


def test_not_found_names_the_call(client):
    with pytest.raises(NotFound) as info:
        client.request("GET", "/projects/nope-nope", "get project nope-nope")
    assert "get project nope-nope" in str(info.value)


def test_pagination_and_exact_name_matching(client, project, rt):
    jobs = f"/projects/{project['id']}/jobs"
    for i in range(1, 24):
        job = client.request("POST", jobs, "create job", json={
            "name": f"job-{i}", "script": "job.py", "timeout": 60, "environment": {"I": str(i)},
            "runtime_identifier": rt})
    conforms(job, "Job")
    assert isinstance(job["timeout"], str) and job["timeout"] == "60"  # int64 as a string
    before = client.calls
    listed = list(client.list(jobs, "jobs", "list jobs"))
    assert len(listed) == 23 and client.calls - before == 3  # pages of 10
    page = client.request("GET", jobs, "list jobs", params={"page_size": 10})
    conforms(page, "ListJobsResponse")
    assert len(page["jobs"]) == 10 and page["next_page_token"]
    substring = list(client.list(jobs, "jobs", "find job", name="job-1"))
    assert {j["name"] for j in substring} == {"job-1", *(f"job-1{d}" for d in range(10))}
    assert client.find_by_name(jobs, "jobs", "job-1", "find job")["name"] == "job-1"
    assert client.find_by_name(jobs, "jobs", "job-99", "find job") is None
    assert environment_out(listed[0]["environment"]) == {"I": "1"}  # a JSON string out


def test_applications_run_as_local_processes_with_the_cml_environment(client, project, sim, tmp_path,
                                                                      rt):
    root = Path(sim.proc.args[sim.proc.args.index("--state-dir") + 1])
    write_script(root, project["id"], "app.py",
                 "import json, os, time\n"
                 "open(os.environ['OUT'], 'w').write(json.dumps({k: v for k, v in os.environ.items()"
                 " if k.startswith('CDSW_')}))\n"
                 "while True: time.sleep(1)\n")
    apps_path = f"/projects/{project['id']}/applications"
    made = []
    for n in (1, 2):
        out = tmp_path / f"env{n}.json"
        body = {"name": f"app {n}", "subdomain": f"ray-app-{n}", "script": "app.py", "cpu": 1,
                "memory": 1, "nvidia_gpu": 0, "environment": {"OUT": str(out)},
                "runtime_identifier": rt}
        conforms(body, "CreateApplicationRequest")
        app = client.request("POST", apps_path, "create application", json=body)
        conforms(app, "Application")
        assert json.loads(app["environment"]) == {"OUT": str(out)}
        made.append((app, out))
    envs = []
    for app, out in made:
        deadline = time.monotonic() + 10
        while not out.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        envs.append(json.loads(out.read_text()))
        while client.request("GET", f"{apps_path}/{app['id']}", "get application")["status"] \
                == "APPLICATION_STARTING":  # for the simulator's start delay
            assert time.monotonic() < deadline
            time.sleep(0.05)
        got = client.request("GET", f"{apps_path}/{app['id']}", "get application")
        assert got["status"] == "APPLICATION_RUNNING"
    ips = [e["CDSW_IP_ADDRESS"] for e in envs]
    assert len(set(ips)) == 2 and all(ip.startswith("127.0.0.") for ip in ips)
    assert all(e["CDSW_PROJECT_ID"] == project["id"] and e["CDSW_APP_PORT"] for e in envs)
    with pytest.raises(Exception) as info:
        client.request("POST", apps_path, "create application", json={
            "name": "dup", "subdomain": "ray-app-1", "script": "app.py", "runtime_identifier": rt})
    assert "409" in str(info.value)
    with pytest.raises(Exception) as info:
        client.request("POST", apps_path, "create application", json={
            "name": "bad", "subdomain": "Bad_Sub", "script": "app.py", "runtime_identifier": rt})
    assert "400" in str(info.value)
    stopping = client.request("POST", f"{apps_path}/{made[0][0]['id']}:stop", "stop application")
    assert stopping["status"] == "APPLICATION_STOPPING"  # then STOPPED, after a short stop phase
    deadline = time.monotonic() + 10
    while client.request("GET", f"{apps_path}/{made[0][0]['id']}", "get application")["status"] \
            != "APPLICATION_STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for app, _ in made:
        client.request("DELETE", f"{apps_path}/{app['id']}", "delete application")
    assert client.request("GET", apps_path, "list applications")["applications"] == []


def test_job_runs_and_parent_chains(client, project, sim, rt):
    root = Path(sim.proc.args[sim.proc.args.index("--state-dir") + 1])
    write_script(root, project["id"], "ok.py", "print('ok')\n")
    jobs = f"/projects/{project['id']}/jobs"
    parent = client.request("POST", jobs, "create job", json={"name": "parent", "script": "ok.py",
                                                              "runtime_identifier": rt})
    child = client.request("POST", jobs, "create job", json={"name": "child", "script": "ok.py",
                                                             "parent_id": parent["id"],
                                                             "runtime_identifier": rt})
    run = client.request("POST", f"{jobs}/{parent['id']}/runs", "run job",
                         json={"environment": {"RUN_KEY": "abc"}})
    conforms(run, "JobRun")
    deadline = time.monotonic() + 20
    while True:
        child_runs = client.request("GET", f"{jobs}/{child['id']}/runs", "list runs")["job_runs"]
        if child_runs and child_runs[0]["status"] == "ENGINE_SUCCEEDED":
            break
        assert time.monotonic() < deadline, child_runs
        time.sleep(0.1)
    done = client.request("GET", f"{jobs}/{parent['id']}/runs/{run['id']}", "get run")
    assert done["status"] == "ENGINE_SUCCEEDED" and environment_out(done["environment"])["RUN_KEY"] == "abc"
    conforms(client.request("GET", f"{jobs}/{child['id']}/runs", "list runs"), "ListJobRunsResponse")


def test_files_upload_download_and_no_overwrite(client, project, sim):
    base = f"/projects/{project['id']}/files"
    for _ in range(2):
        client.request("POST", base, "upload", files={"conf/settings.json": ("settings.json", b"{}")})
    listing = client.request("GET", f"{base}/conf", "list files")
    conforms(listing, "ListProjectFilesResponse")
    # entries are named relative to the directory listed
    assert sorted(f["path"] for f in listing["files"]) == ["settings(1).json", "settings.json"]
    assert client.request("POST", f"{base}/conf/settings.json:download", "download") == b"{}"


def test_retries_ride_out_injected_errors_and_429s(tmp_path):
    faulty = Simulator(tmp_path, "--error-rate", "0.2", "--rate-limit-rate", "0.2",
                       "--retry-after", "0.05", "--seed", "3")
    try:
        client = CMLClient(faulty.url, KEY, backoff=0.02, max_backoff=0.2, retries=10)
        for _ in range(25):  # idempotent calls are retried until they get through
            assert client.validate_key()["valid"] is True
            assert list(client.list("/runtimes", "runtimes", "list runtimes"))
        counts = faulty.counts()
        assert counts["injected_errors"] > 0 and counts["injected_429"] > 0
        assert client.calls > 50
        # a create is retried after a 429 (turned away), never after a 5xx: its answer may
        # have been lost after it took effect, so CMLPlatform looks the name up instead
        outcomes = set()
        for i in range(20):
            try:
                client.request("POST", "/projects", "create project", json={"name": f"p{i}"})
                outcomes.add("created")
            except PlatformError as e:
                assert "create project: HTTP 5" in str(e)
                outcomes.add("5xx")
        assert outcomes == {"created", "5xx"}
    finally:
        faulty.stop()


def test_a_rate_limit_turns_a_burst_away_and_a_client_held_to_it_gets_through(tmp_path):
    limited = Simulator(tmp_path, "--max-requests-per-second", "20")
    try:
        def get(_):
            return requests.get(limited.url + "/api/v2/runtimes",
                                headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(get, range(80)))
        took = time.monotonic() - started
        refused = [a for a in answers if a.status_code == 429]
        passed = len(answers) - len(refused)
        assert refused and all(a.status_code == 200 for a in answers if a not in refused)
        assert 20 <= passed <= 20 + 20 * took + 1  # the burst, then 20 a second
        conforms(refused[0].json(), "runtimeError")  # the error shape every error has
        for answer in refused:
            assert set(answer.json()) == {"error", "code", "message", "details"}
            assert 0 < float(answer.headers["Retry-After"]) <= 1 / 20 + 1e-3
        assert limited.counts()["rate_limited"] == len(refused)

        time.sleep(1.0)  # the server's bucket refills
        client = CMLClient(limited.url, KEY, retries=0, max_requests_per_second=20)
        with ThreadPoolExecutor(max_workers=8) as pool:  # two seconds' worth, all at once
            runtimes = list(pool.map(lambda _: client.runtimes(), range(40)))
        assert all(runtimes) and client.calls == 40 and client.throttled == 0
        assert limited.counts()["rate_limited"] == len(refused)  # none more
    finally:
        limited.stop()

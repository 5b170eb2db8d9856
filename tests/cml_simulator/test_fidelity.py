"""The simulator against the public CML API v2: one contract per behaviour, over HTTP to a real
simulator process on loopback, every answer checked against the swagger (shared/)."""
from __future__ import annotations

import http.client
import json
import time
from datetime import datetime

import pytest
import requests

from tests.cml_simulator.helpers import KEY, Simulator, conforms, runtime_of, write_script
from tests.conftest import stop_recorded_apps, wait_until

AUTH = {"Authorization": f"Bearer {KEY}"}
APP_SCRIPT = "import time\nwhile True: time.sleep(1)\n"
EXIT_SCRIPT = ("import os, sys, time\ntime.sleep(float(os.environ.get('SLEEP', '0')))\n"
               "sys.exit(int(os.environ.get('CODE', '0')))\n")

pytestmark = pytest.mark.integration


class Api:
    """Raw HTTP to the simulator: answers are checked, not retried."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        self.base = sim.url + "/api/v2"

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        answer = requests.request(method, self.base + path, headers=AUTH, timeout=15, **kwargs)
        assert answer.status_code == expect, (method, path, answer.status_code, answer.text)
        return answer.json()

    def error(self, method: str, path: str, status: int, **kwargs) -> str:
        """A refused call: the grpc-gateway JSON error shape, never an HTML page."""
        answer = requests.request(method, self.base + path, headers=AUTH, timeout=15, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith("application/json"), answer.text
        body = answer.json()
        assert set(body) == {"error", "code", "message", "details"}, body
        conforms(body, "runtimeError")
        return body["message"]

    def raw_get(self, path: str) -> dict:
        """GET with the path sent exactly as written (no client-side normalisation of "." or %2F)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=15)
        try:
            conn.request("GET", "/api/v2" + path, headers=AUTH)
            answer = conn.getresponse()
            assert answer.status == 200, (path, answer.status, answer.read())
            return json.loads(answer.read())
        finally:
            conn.close()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    state = tmp_path_factory.mktemp("fidelity")
    simulator = Simulator(state)
    yield simulator
    simulator.stop()
    for store in (state / "platform").glob("*"):  # last resort: app processes it left
        stop_recorded_apps(store)


@pytest.fixture(scope="module")
def api(sim):
    return Api(sim)


@pytest.fixture(scope="module")
def rt(sim):
    return runtime_of(sim)


@pytest.fixture
def new_project(api, sim):
    """Makes projects (with scripts); deletes them afterwards, which stops their apps."""
    made = []

    def make(name: str, scripts: dict | None = None, **body) -> str:
        project = api("POST", "/projects", json={"name": name, "template": "blank", **body})
        conforms(project, "Project")
        made.append(project["id"])
        for script, text in (scripts or {}).items():
            write_script(sim.state_dir, project["id"], script, text)
        return project["id"]
    yield make
    for project_id in made:
        requests.delete(f"{api.base}/projects/{project_id}", headers=AUTH, timeout=30)




def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def app_body(name: str, rt: str, **extra) -> dict:
    return {"name": name, "subdomain": name, "script": "app.py", "runtime_identifier": rt, **extra}


# -- 1. search_filter and sort ------------------------------------------------------------------
def test_application_status_filter_takes_the_spec_lowercase_values(api, new_project, rt):
    apps = f"/projects/{new_project('filter apps', {'app.py': APP_SCRIPT})}/applications"
    up = api("POST", apps, json=app_body("filter-up", rt))
    down = api("POST", apps, json=app_body("filter-down", rt))
    api("POST", f"{apps}/{down['id']}:stop")
    statuses = lambda: {a["name"]: a["status"] for a in api("GET", apps)["applications"]}  # noqa: E731
    wait_until(lambda: statuses() == {"filter-up": "APPLICATION_RUNNING",
                                      "filter-down": "APPLICATION_STOPPED"})

    def names(**wanted) -> list[str]:
        page = api("GET", apps, params={"search_filter": json.dumps(wanted)})
        conforms(page, "ListApplicationsResponse")
        return sorted(a["name"] for a in page["applications"])
    assert names(status="running") == ["filter-up"]
    assert names(status="stopped") == ["filter-down"]
    assert names(status="starting") == names(status="stopping") == names(status="failed") == []
    assert "status" in api.error("GET", apps, 400, params={
        "search_filter": json.dumps({"status": "APPLICATION_RUNNING"})})
    assert names(name="-up") == ["filter-up"] and names(name="UP") == []  # other keys: substring
    assert names(status="running", subdomain="filter") == ["filter-up"]
    assert up["id"] != down["id"]


def test_job_run_status_filter_takes_the_spec_lowercase_values(api, new_project, rt):
    jobs = f"/projects/{new_project('filter runs', {'exit.py': EXIT_SCRIPT})}/jobs"
    job = api('POST', jobs, json={'name': 'exit', 'script': 'exit.py', 'runtime_identifier': rt})
    runs = f"{jobs}/{job['id']}/runs"
    good = api("POST", runs, json={"environment": {"CODE": "0"}})
    bad = api("POST", runs, json={"environment": {"CODE": "3"}})
    slow = api("POST", runs, json={"environment": {"SLEEP": "30"}})
    try:
        status = lambda run: api("GET", f"{runs}/{run['id']}")["status"]  # noqa: E731
        wait_until(lambda: (status(good), status(bad), status(slow)) ==
                   ("ENGINE_SUCCEEDED", "ENGINE_FAILED", "ENGINE_RUNNING"))

        def ids(value: str) -> list[str]:
            page = api("GET", runs, params={"search_filter": json.dumps({"status": value})})
            conforms(page, "ListJobRunsResponse")
            return [r["id"] for r in page["job_runs"]]
        assert ids("succeeded") == [good["id"]]
        assert ids("failed") == [bad["id"]]
        assert ids("running") == [slow["id"]]
        assert ids("scheduling") == ids("timedout") == ids("stopped") == []
        api.error("GET", runs, 400, params={"search_filter": json.dumps({"status": "ENGINE_FAILED"})})
        api("POST", f"{runs}/{slow['id']}:stop")
        assert ids("stopped") == [slow["id"]]
    finally:  # the slow run's process ends now, whatever happened above
        requests.post(f"{api.base}{runs}/{slow['id']}:stop", headers=AUTH, timeout=15)


def test_dotted_filter_keys_reach_the_nested_field(api, new_project, rt):
    project_id = new_project("dotted keys")
    found = api("GET", "/projects", params={"search_filter": json.dumps(
        {"owner.username": "simul", "name": "dotted keys"})})
    conforms(found, "ListProjectsResponse")
    assert [p["id"] for p in found["projects"]] == [project_id]
    assert api("GET", "/projects", params={"search_filter": json.dumps(
        {"creator.username": "nobody"})})["projects"] == []
    jobs = f"/projects/{project_id}/jobs"
    job = api("POST", jobs, json={"name": "dotted", "script": "x.py", "runtime_identifier": rt})
    page = api("GET", jobs, params={"search_filter": json.dumps({"creator.username": "simulator"})})
    conforms(page, "ListJobsResponse")
    assert [j["id"] for j in page["jobs"]] == [job["id"]]
    by_creator = json.dumps({"creator.username": "Simulator"})
    assert api("GET", jobs, params={"search_filter": by_creator})["jobs"] == []


def test_sort_by_several_keys_each_with_its_direction(api, new_project, rt):
    jobs = f"/projects/{new_project('sorting')}/jobs"
    for name, script in (("x1", "b.py"), ("x2", "b.py"), ("x3", "a.py"), ("x4", "a.py")):
        api("POST", jobs, json={"name": name, "script": script, "runtime_identifier": rt})

    def order(sort: str) -> list[str]:
        page = api("GET", jobs, params={"sort": sort})
        conforms(page, "ListJobsResponse")
        return [j["name"] for j in page["jobs"]]
    assert order("script,-name") == ["x4", "x3", "x2", "x1"]
    assert order("-script,+name") == ["x1", "x2", "x3", "x4"]
    assert order("+script,name") == ["x3", "x4", "x1", "x2"]
    assert order("-created_at") == ["x4", "x3", "x2", "x1"]
    unencoded = api("GET", f"{jobs}?sort=-script,+name")  # "+" decodes to a space
    assert [j["name"] for j in unencoded["jobs"]] == ["x1", "x2", "x3", "x4"]


# -- 2. jobs across projects, the job's project, dependent jobs -------------------------------------
def test_list_all_jobs_across_projects(api, new_project, rt):
    first, second = new_project("All Jobs A"), new_project("All Jobs B")
    parent = api("POST", f"/projects/{first}/jobs", json={"name": "parent", "script": "x.py",
                                                          "runtime_identifier": rt})
    child = api("POST", f"/projects/{first}/jobs", json={"name": "child", "script": "x.py",
                                                         "runtime_identifier": rt, "parent_id": parent["id"]})
    other = api("POST", f"/projects/{second}/jobs", json={"name": "other", "script": "x.py",
                                                          "runtime_identifier": rt})
    page = api("GET", "/jobs", params={"page_size": 100})
    conforms(page, "ListJobsResponse")
    mine = {j["id"]: j for j in page["jobs"] if j["id"] in {parent["id"], child["id"], other["id"]}}
    assert len(mine) == 3
    assert mine[parent["id"]]["project"] == {"public_identifier": first, "name": "All Jobs A",
                                             "slug": "all-jobs-a", "default_project_engine": "ml_runtime"}
    assert mine[other["id"]]["project"]["name"] == "All Jobs B"
    assert (mine[parent["id"]]["type"], mine[child["id"]]["type"]) == ("manual", "dependent")
    assert child["type"] == "dependent" and child["parent_id"] == parent["id"]
    got = api("GET", f"/projects/{first}/jobs/{child['id']}")
    assert got["project"]["slug"] == "all-jobs-a" and got["type"] == "dependent"
    dependent = api("GET", "/jobs", params={"search_filter": json.dumps({"type": "dependent"}),
                                            "page_size": 100})["jobs"]
    assert child["id"] in {j["id"] for j in dependent} and parent["id"] not in {j["id"] for j in dependent}


# -- 3. job run timestamps ---------------------------------------------------------------------
def test_job_run_timestamps_are_set_once_when_each_state_is_reached(api, new_project, rt):
    jobs = f"/projects/{new_project('run stamps', {'exit.py': EXIT_SCRIPT})}/jobs"
    job = api('POST', jobs, json={'name': 'stamps', 'script': 'exit.py', 'runtime_identifier': rt})
    runs = f"{jobs}/{job['id']}/runs"
    stamps = lambda run: {k: v for k, v in run.items() if k.endswith("_at") and k != "created_at"}  # noqa: E731
    created = api("POST", runs, json={"environment": {"SLEEP": "1"}})
    conforms(created, "JobRun")
    assert created["status"] == "ENGINE_SCHEDULING" and set(stamps(created)) == {"scheduling_at"}
    get = lambda: api("GET", f"{runs}/{created['id']}")  # noqa: E731
    running = wait_until(lambda: (r := get())["status"] == "ENGINE_RUNNING" and r)
    assert set(stamps(running)) == {"scheduling_at", "starting_at", "running_at"}
    done = wait_until(lambda: (r := get())["status"] == "ENGINE_SUCCEEDED" and r)
    conforms(done, "JobRun")
    assert set(stamps(done)) == {"scheduling_at", "starting_at", "running_at", "finished_at"}
    assert {k: done[k] for k in stamps(running)} == stamps(running)  # never moved
    times = [stamp(done[k]) for k in ("created_at", "scheduling_at", "starting_at", "running_at",
                                      "finished_at")]
    assert times == sorted(times) and times[-1] - times[0] >= 1.0  # the script slept 1 s
    time.sleep(0.3)
    assert stamps(get()) == stamps(done)  # finished_at is when it ended, not when asked
    quick = api("POST", runs, json={})  # done before it is reported running: still stamped
    def succeeded():
        run = api("GET", f"{runs}/{quick['id']}")
        return run["status"] == "ENGINE_SUCCEEDED" and run
    finished = wait_until(succeeded)
    assert set(stamps(finished)) == {"scheduling_at", "starting_at", "running_at", "finished_at"}


# -- 4. application lifecycle ------------------------------------------------------------------
def test_applications_take_time_to_start_and_to_stop(api, new_project, rt):
    apps = f"/projects/{new_project('lifecycle', {'app.py': APP_SCRIPT})}/applications"
    began = time.monotonic()
    body = app_body("lifecycle", rt)
    conforms(body, "CreateApplicationRequest")
    created = api("POST", apps, json=body)
    conforms(created, "Application")
    assert created["status"] == "APPLICATION_STARTING" and "running_at" not in created
    path = f"{apps}/{created['id']}"
    running = wait_until(lambda: (a := api("GET", path))["status"] == "APPLICATION_RUNNING" and a)
    assert time.monotonic() - began >= 0.9  # the default start delay (about 1 s)
    assert stamp(running["running_at"]) >= stamp(created["created_at"]) + 0.9

    patched = api("PATCH", path, json={"description": "changed"})
    conforms(patched, "Application")
    assert patched["description"] == "changed" and patched["updated_at"] > created["updated_at"]

    stopping = api("POST", f"{path}:stop")
    conforms(stopping, "Application")
    assert stopping["status"] == "APPLICATION_STOPPING" and "stopped_at" not in stopping
    stopped = wait_until(lambda: (a := api("GET", path))["status"] == "APPLICATION_STOPPED" and a)
    assert stamp(stopped["stopped_at"]) >= stamp(stopping["updated_at"])
    assert stopped["running_at"] == running["running_at"]

    restarted = api("POST", f"{path}:restart")
    conforms(restarted, "Application")
    assert restarted["status"] == "APPLICATION_STARTING"
    assert "stopped_at" not in restarted and "running_at" not in restarted
    assert restarted["updated_at"] > stopped["updated_at"]
    again = wait_until(lambda: (a := api("GET", path))["status"] == "APPLICATION_RUNNING" and a)
    assert again["running_at"] > running["running_at"]


def test_a_zero_start_delay_runs_at_once_and_stopping_still_takes_a_phase(tmp_path, rt):
    fast = Simulator(tmp_path, "--app-start-delay", "0")
    try:
        api = Api(fast)
        project_id = api("POST", "/projects", json={"name": "fast"})["id"]
        write_script(fast.state_dir, project_id, "app.py", APP_SCRIPT)
        apps = f"/projects/{project_id}/applications"
        created = api("POST", apps, json=app_body("fast", rt))
        assert created["status"] == "APPLICATION_RUNNING" and created["running_at"]
        assert api("POST", f"{apps}/{created['id']}:stop")["status"] == "APPLICATION_STOPPING"
        wait_until(lambda: api("GET", f"{apps}/{created['id']}")["status"] == "APPLICATION_STOPPED")
    finally:
        fast.stop()
        for store in (tmp_path / "platform").glob("*"):
            stop_recorded_apps(store)


# -- 5. PATCH ------------------------------------------------------------------------------------
def test_patch_replaces_the_environment_of_applications_and_jobs(api, new_project, rt):
    project_id = new_project("patching", {"app.py": APP_SCRIPT})
    app = api("POST", f"/projects/{project_id}/applications",
              json=app_body("patching", rt, environment={"A": "1", "B": "2"}))
    job = api("POST", f"/projects/{project_id}/jobs", json={
        "name": "patching", "script": "x.py", "runtime_identifier": rt, "arguments": "--x",
        "environment": {"A": "1", "B": "2"}})
    for path, definition in ((f"/projects/{project_id}/applications/{app['id']}", "Application"),
                             (f"/projects/{project_id}/jobs/{job['id']}", "Job")):
        env = lambda answer: json.loads(answer["environment"])  # noqa: E731
        replaced = api("PATCH", path, json={"environment": json.dumps({"C": "3"})})
        conforms(replaced, definition)
        assert env(replaced) == {"C": "3"} and env(api("GET", path)) == {"C": "3"}
        assert env(api("PATCH", path, json={"environment": "", "name": "renamed"})) == {"C": "3"}
        assert env(api("PATCH", path, json={"environment": "{}"})) == {}
        api.error("PATCH", path, 400, json={"environment": {"D": "4"}})  # a string in PATCH bodies
        api.error("PATCH", path, 400, json={"environment": "not json"})
        kept = api("GET", path)
        assert kept["name"] == "renamed" and kept["script"] in ("app.py", "x.py")
    job_now = api("PATCH", f"/projects/{project_id}/jobs/{job['id']}", json={"timeout": "120"})
    assert job_now["timeout"] == "120" and job_now["arguments"] == "--x"


# -- 6. project files ----------------------------------------------------------------------------
def test_the_project_root_lists_as_empty_dot_or_slash_with_relative_entry_paths(api, new_project):
    project_id = new_project("files root")
    files = f"/projects/{project_id}/files"
    api("POST", files, files={"top.txt": ("top.txt", b"12345"),
                              "conf/settings.json": ("settings.json", b"{}")})
    root = api("GET", f"{files}/")
    conforms(root, "ListProjectFilesResponse")
    assert root["files"] == [{"path": "conf", "is_dir": True},
                             {"path": "top.txt", "is_dir": False, "file_size": "5"}]
    assert api.raw_get(f"{files}/.") == root
    assert api.raw_get(f"{files}/%2F") == root
    conf = api("GET", f"{files}/conf")
    assert conf["files"] == [{"path": "settings.json", "is_dir": False, "file_size": "2"}]
    assert api.raw_get(f"{files}/conf%2F") == conf


# -- 7. wrong types, page size, key audience ----------------------------------------------------------
def test_a_body_of_the_wrong_type_is_a_json_400(api, new_project, rt):
    project_id = new_project("wrong types", {"app.py": APP_SCRIPT})
    jobs, apps = f"/projects/{project_id}/jobs", f"/projects/{project_id}/applications"
    job = {"name": "typed", "script": "x.py", "runtime_identifier": rt}
    made = api("POST", jobs, json={**job, "timeout": "60", "cpu": "1.5"})  # quoted numbers: fine
    assert (made["timeout"], made["cpu"]) == ("60", 1.5)
    refused = [("POST", jobs, {**job, "environment": "A=1"}), ("POST", jobs, {**job, "name": 5}),
               ("POST", jobs, {**job, "cpu": "lots"}), ("POST", jobs, {**job, "timeout": 1.5}),
               ("POST", jobs, {**job, "environment": {"A": 1}}), ("POST", jobs, [job]),
               ("POST", apps, app_body("typed", rt, environment="A=1")),
               ("POST", apps, app_body("typed", rt, bypass_authentication="yes")),
               ("POST", "/projects", {"name": ["x"]}), ("POST", "/projects", "x"),
               ("POST", f"{jobs}/{made['id']}/runs", {"environment": "A=1"}),
               ("PATCH", f"{jobs}/{made['id']}", {"timeout": "soon"}),
               ("POST", "/auth/validate_key", ["API"])]
    for method, path, body in refused:
        assert "cannot unmarshal" in api.error(method, path, 400, json=body), (method, path, body)
    assert [j["name"] for j in api("GET", jobs)["jobs"]] == ["typed"]
    assert api("GET", apps)["applications"] == []


def test_a_page_size_of_zero_or_less_means_the_default(api, new_project, rt):
    jobs = f"/projects/{new_project('page size')}/jobs"
    for n in range(12):
        api("POST", jobs, json={"name": f"p{n}", "script": "x.py", "runtime_identifier": rt})
    for size in (0, -5, None):
        page = api("GET", jobs, params={"page_size": size})
        conforms(page, "ListJobsResponse")
        assert len(page["jobs"]) == 10 and page["next_page_token"], size
    assert len(api("GET", jobs, params={"page_size": 5})["jobs"]) == 5


def test_validate_key_checks_the_audience(api):
    answer = api("POST", "/auth/validate_key", json={"audience": "API"})
    conforms(answer, "ValidateAPIKeyResponse")
    assert answer["valid"] is True and answer["username"] == "simulator"
    assert "audience" in api.error("POST", "/auth/validate_key", 403, json={"audience": "Application"})
    for body in ({"audience": "api"}, {"audience": "nonsense"}, {}):
        assert "audience" in api.error("POST", "/auth/validate_key", 400, json=body)


# -- 8. runtime_identifier in ML Runtimes projects ------------------------------------------------
def test_ml_runtime_projects_require_a_runtime_identifier(api, new_project, rt):
    runtimes = api("GET", "/runtimes")
    conforms(runtimes, "ListRuntimesResponse")
    assert rt in {r["image_identifier"] for r in runtimes["runtimes"]}
    explicit = new_project("runtimes", {"app.py": APP_SCRIPT}, default_project_engine_type="ml_runtime")
    default = new_project("runtimes by default")
    assert api("GET", f"/projects/{default}")["default_engine_type"] == "ml_runtime"
    for project_id in (explicit, default):
        jobs, apps = f"/projects/{project_id}/jobs", f"/projects/{project_id}/applications"
        assert "runtime_identifier" in api.error("POST", jobs, 400, json={"name": "j", "script": "x.py"})
        no_runtime = app_body(f"rt-{project_id[:4]}", rt)
        del no_runtime["runtime_identifier"]
        assert "runtime_identifier" in api.error("POST", apps, 400, json=no_runtime)
        assert "not available" in api.error("POST", jobs, 400, json={
            "name": "j", "script": "x.py", "runtime_identifier": "no-such-runtime"})
        assert api("GET", jobs)["jobs"] == [] and api("GET", apps)["applications"] == []
    job = api("POST", f"/projects/{explicit}/jobs", json={"name": "j", "script": "x.py",
                                                          "runtime_identifier": rt})
    assert job["runtime_identifier"] == rt
    legacy = new_project("legacy engines", default_project_engine_type="legacy_engine")
    assert api("GET", f"/projects/{legacy}")["default_engine_type"] == "legacy_engine"
    api("POST", f"/projects/{legacy}/jobs", json={"name": "j", "script": "x.py"})
    api.error("POST", "/projects", 400, json={"name": "odd", "default_project_engine_type": "gpu"})

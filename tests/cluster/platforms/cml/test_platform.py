"""CMLPlatform (the Platform interface over the CML API) against the simulator."""
from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from cluster.config import parse_config
from cluster.lifecycle import apps_running
from cluster.platforms.cml.client import CMLClient, subdomain, with_git_token
from cluster.platforms.cml.platform import CMLPlatform, ProjectMissing
from cluster.platforms.records import AppSpec, JobSpec, node_tags
from core.timing import poll_until
from tests.cml_simulator.helpers import KEY, Simulator, runtime_of, write_script

pytestmark = pytest.mark.integration


def make_platform(sim, session=None, max_requests_per_second: float = 50, **cml) -> CMLPlatform:
    cml = {"runtime_identifier": runtime_of(sim), **cml}
    config = parse_config({"platform": "cml", "cluster_name": "simtest",
                           "cml": {"host": sim.url, "api_key": KEY, "shared_host_network": True,
                                   **cml}}, environ={})
    return CMLPlatform(config, CMLClient(sim.url, KEY, backoff=0.02, max_backoff=0.2, retries=12,
                                         session=session,
                                         max_requests_per_second=max_requests_per_second))


class Recording(requests.Session):
    """A session that keeps the JSON body of every request it sends."""
    def __init__(self):
        super().__init__()
        self.bodies: list[tuple[str, str, dict]] = []

    def request(self, method, url, **kwargs):
        if kwargs.get("json") is not None:
            self.bodies.append((method, url, kwargs["json"]))
        return super().request(method, url, **kwargs)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim-platform"))
    yield simulator
    simulator.stop()


def test_git_token_goes_into_https_urls_only():
    assert with_git_token("https://git.example.com/a/b.git", "t0k") == \
        "https://oauth2:t0k@git.example.com/a/b.git"
    assert with_git_token("/local/repo", "t0k") == "/local/repo"
    assert with_git_token("https://git.example.com/a.git", None) == "https://git.example.com/a.git"


def test_subdomains_are_valid():
    assert subdomain("Ray_Local--Worker 3") == "ray-local-worker-3"


def test_project_files_apps_and_jobs(sim, tmp_path):
    platform = make_platform(sim)
    assert platform.check() == []
    project = platform.create_project("simtest")
    assert platform.create_project("simtest").id == project.id  # found, not created again
    assert platform.find_project("simtest").status == "success"
    assert platform.read_file("nodes/x.json") is None
    platform.write_file("nodes/x.json", '{"ip": "127.0.0.9"}')
    platform.write_file("nodes/x.json", '{"ip": "127.0.0.10"}')  # replaced, not x(1).json
    assert platform.read_file("nodes/x.json") == '{"ip": "127.0.0.10"}'
    platform.delete_file("nodes/x.json")
    assert platform.read_file("nodes/x.json") is None

    spec = AppSpec(name="simtest-worker-1", script="cluster/launcher.py", cpu=1, memory=1,
                   env={"RAYDEPLOY_ROLE": "none"}, tags=node_tags("simtest", "worker", 1))
    app = platform.create_app(spec)
    assert platform.create_app(spec).id == app.id
    listed = platform.list_apps()
    assert [(a.name, a.spec.tags, a.spec.env) for a in listed] == \
        [("simtest-worker-1", spec.tags, spec.env)]  # the tags kept beside the environment
    platform.delete_app(app.id)
    assert platform.list_apps() == []

    # an app made before apps had tags: its kind in its environment, the rest in its name
    for name, role in (("simtest-worker-4", "worker"), ("simtest-head", "head"),
                       ("simtest-worker-old", "worker")):
        platform.client.request("POST", platform._path("/applications"), "create", json={
            "name": name, "subdomain": subdomain(name), "script": "cluster/launcher.py",
            "cpu": 1, "memory": 1, "runtime_identifier": platform.runtime_identifier,
            "environment": {"RAYDEPLOY_ROLE": role}})
    old = {a.name: a for a in platform.list_apps()}
    assert {name: a.spec.tags for name, a in old.items()} == {
        "simtest-worker-4": node_tags("simtest", "worker", 4),
        "simtest-head": node_tags("simtest", "head"), "simtest-worker-old": {}}
    assert platform.create_app(replace(spec, name="simtest-head",
                                       tags=node_tags("simtest", "head"))).id == \
        old["simtest-head"].id  # found by its tags: not made twice after an upgrade
    for app in old.values():
        platform.delete_app(app.id)

    job = platform.create_job(JobSpec(name="hello", script="hello.py", timeout=60))
    assert platform.create_job(JobSpec(name="hello", script="hello.py")).id == job.id
    child = platform.create_job(JobSpec(name="child", script="hello.py", parent="hello"), job.id)
    assert {j.name: j.spec.parent for j in platform.list_jobs()} == {"hello": None, "child": "hello"}
    updated = platform.update_job(job.id, JobSpec(name="hello", script="hello.py", timeout=120,
                                                  environment={"A": "1"}))
    assert updated.spec.timeout == 120 and updated.spec.environment == {"A": "1"}
    assert child.id != job.id


def test_a_project_chosen_by_id_from_the_environment_is_used_and_never_made_anew(sim):
    existing = make_platform(sim).create_project("made-by-someone-else")

    def platform_with(environ: dict, **cml) -> CMLPlatform:
        config = parse_config({"platform": "cml", "cluster_name": "envtest",
                               "cml": {"host": sim.url, "api_key": KEY, **cml}}, environ=environ)
        return CMLPlatform(config, CMLClient(sim.url, KEY, backoff=0.02))

    # inside a CML session: the project it runs in
    found = platform_with({"CDSW_PROJECT_ID": existing.id}).find_project("envtest")
    assert (found.id, found.name) == (existing.id, "made-by-someone-else")
    assert platform_with({"CML_PROJECT_ID": existing.id, "CDSW_PROJECT_ID": "other"}
                         ).find_project("envtest").id == existing.id
    # a project named in the config wins over the session's own
    assert platform_with({"CDSW_PROJECT_ID": existing.id},
                         project_name="envtest-named").find_project("envtest-named") is None
    missing = platform_with({"CML_PROJECT_ID": "no-such-project"})
    with pytest.raises(ProjectMissing) as info:
        missing.find_project("envtest")
    assert "no-such-project does not exist" in str(info.value)
    with pytest.raises(ProjectMissing):
        missing.create_project("envtest")
    for listing in (missing.list_apps, missing.list_jobs):  # e.g. a teardown: the same message
        with pytest.raises(ProjectMissing, match="no-such-project does not exist"):
            listing()
    assert [p["name"] for p in missing.client.list("/projects", "projects", "list")
            if p["name"] == "envtest"] == []


@pytest.mark.parametrize("seed", ["11", "12", "13"])
def test_creates_stay_unique_under_injected_faults(tmp_path, seed):
    faulty = Simulator(tmp_path, "--error-rate", "0.3", "--rate-limit-rate", "0.2",
                       "--retry-after", "0.02", "--seed", seed)
    try:
        platform = make_platform(faulty)
        platform.create_project("faulty")
        for n in range(8):
            platform.create_job(JobSpec(name=f"job-{n}", script="x.py"))
        for n in range(3):
            platform.create_app(AppSpec(name=f"faulty-app-{n}", script="missing.py", cpu=1, memory=1))
        # a run started after a lost answer is found, not started again (and not an old one)
        job = next(j for j in platform.list_jobs() if j.name == "job-0")
        runs = [platform.start_job_run(job.id, f"spec-{n % 2}") for n in range(4)]
        listed = platform.job_runs(job.id)
        assert len({r.id for r in runs}) == 4 and sorted(r.id for r in listed) == \
            sorted(r.id for r in runs)
        counts = faulty.counts()
        assert (counts["projects"], counts["jobs"], counts["applications"]) == (1, 8, 3)
        assert counts["injected_errors"] > 0 and counts["injected_429"] > 0
    finally:
        faulty.stop()


def test_a_missing_or_unknown_runtime_is_reported_with_the_choices(sim):
    runtime = runtime_of(sim)
    [missing] = make_platform(sim, runtime_identifier=None).check()
    assert "cml.runtime_identifier" in missing and "not set" in missing and runtime in missing
    [unknown] = make_platform(sim, runtime_identifier="docker.example/no-such:1").check()
    assert "docker.example/no-such:1 is not available" in unknown and runtime in unknown
    assert make_platform(sim).check() == []


def test_jobs_without_a_parent_never_send_an_empty_parent_id(sim):
    session = Recording()
    platform = make_platform(sim, session=session, project_name="simtest-parents")
    platform.create_project("simtest-parents")
    root = platform.create_job(JobSpec(name="root", script="hello.py"))
    child = platform.create_job(JobSpec(name="kid", script="hello.py", parent="root"), root.id)
    platform.update_job(root.id, JobSpec(name="root", script="hello.py", timeout=30))
    assert {j.name: j.spec.parent for j in platform.list_jobs()} == {"root": None, "kid": "root"}

    orphan = platform.update_job(child.id, JobSpec(name="kid", script="hello.py"))
    assert orphan.spec.parent is None and orphan.id != child.id  # made anew, without a parent
    assert sorted(j.name for j in platform.list_jobs()) == ["kid", "root"]
    job_bodies = [body for method, url, body in session.bodies if "/jobs" in url]
    assert len(job_bodies) >= 4
    assert all(body.get("parent_id", "x") != "" for body in job_bodies)
    assert [b["parent_id"] for b in job_bodies if "parent_id" in b] == [root.id]


@pytest.mark.parametrize("count", [64, 256])
def test_many_apps_at_once_are_each_created_once_under_injected_faults(tmp_path, count):
    """20% of calls fail (half of them after taking effect, the answer lost) while the
    simulator enforces the rate the client keeps to: every app is made exactly once."""
    faulty = Simulator(tmp_path, "--error-rate", "0.2", "--seed", str(count),
                       "--max-requests-per-second", "100", "--app-start-delay", "0.2")
    try:
        platform = make_platform(faulty, max_requests_per_second=100)
        project = platform.create_project("many")
        write_script(tmp_path, project.id, "sleep.py", "import time\nwhile True: time.sleep(3600)\n")
        specs = [AppSpec(name=f"simtest-worker-{n}", script="sleep.py", cpu=1, memory=1)
                 for n in range(1, count + 1)]
        apps = platform.create_apps(specs)
        assert [a.name for a in apps] == [s.name for s in specs]
        poll_until(lambda: apps_running(platform, apps), 120, f"{count} apps", interval=0.25)
        listed = [a.name for a in platform.list_apps()]
        assert sorted(listed) == sorted(s.name for s in specs)  # each exactly once
        counts = faulty.counts()
        assert counts["applications"] == count and counts["answers_lost"] > 0
        assert counts["rate_limited"] == 0  # the client kept to the limit it shares
        again = platform.client.calls
        assert [a.id for a in platform.create_apps(specs)] == [a.id for a in apps]  # a resumed run
        assert platform.client.calls - again < 20  # one listing (and its retries), no create
    finally:
        faulty.stop()


def test_the_control_plane_has_a_project_of_its_own(sim):
    """The control project is another project (the cluster's pods share none of its files);
    a control app an earlier version made in the cluster's own project is named, not taken
    over; with no control project yet, commands that make nothing say --deploy makes it."""
    from cluster.platforms.cml import control
    from core.errors import Unavailable
    platform = make_platform(sim, project_name="ctl")
    config = platform.config
    cluster = control.ensure_project(platform, lambda _: None)
    with pytest.raises(Unavailable, match="no control plane on CML yet .*--deploy makes it"):
        control.existing(platform, config)
    plane = control.control_project(platform)
    assert plane.project_name == "ctl-control"
    made = control.ensure_project(plane, lambda _: None)
    assert made.id != cluster.id and plane.project_id == made.id
    assert platform.project_id == cluster.id  # the cluster's platform is left as it was
    plane.write_file_at(control.CONFIG_FILE, "cluster_name: simtest\n")
    assert platform.read_file_at(control.CONFIG_FILE) is None  # not in the cluster's project
    control.refuse_one_in_the_cluster_project(platform, config)  # none there: nothing said
    old = platform.create_app(AppSpec(name="simtest-control", script="cluster/platforms/cml/control_app.py",
                                      cpu=1, memory=1, env={"RAYDEPLOY_ROLE": "none"}))
    try:
        with pytest.raises(Unavailable, match="earlier version made in the cluster's own project"
                                              ".*audit export.*project ctl-control"):
            control.refuse_one_in_the_cluster_project(platform, config)
    finally:
        platform.delete_app(old.id)

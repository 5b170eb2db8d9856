"""CMLPlatform (the Platform interface over the CML API) against the simulator."""
from __future__ import annotations

import pytest

from cluster.config import parse_config
from cluster.lifecycle import apps_running
from cluster.platforms.base import AppSpec, JobSpec
from cluster.platforms.cml.client import CMLClient
from cluster.platforms.cml.platform import CMLPlatform, subdomain, with_git_token
from core.timing import poll_until
from tests.cml_simulator.test_contract import KEY, Simulator, runtime_of, write_script

pytestmark = pytest.mark.integration


def make_platform(sim, max_requests_per_second: float = 50, **cml) -> CMLPlatform:
    config = parse_config({"platform": "cml", "cluster_name": "simtest",
                           "cml": {"host": sim.url, "api_key": KEY, "shared_host_network": True,
                                   "runtime_identifier": runtime_of(sim), **cml}}, environ={})
    return CMLPlatform(config, CMLClient(sim.url, KEY, backoff=0.02, max_backoff=0.2, retries=12,
                                         max_requests_per_second=max_requests_per_second))


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
                   env={"RAYDEPLOY_ROLE": "none"})
    app = platform.create_app(spec)
    assert platform.create_app(spec).id == app.id
    assert [a.name for a in platform.list_apps()] == ["simtest-worker-1"]
    platform.delete_app(app.id)
    assert platform.list_apps() == []

    job = platform.create_job(JobSpec(name="hello", script="hello.py", timeout=60))
    assert platform.create_job(JobSpec(name="hello", script="hello.py")).id == job.id
    child = platform.create_job(JobSpec(name="child", script="hello.py", parent="hello"), job.id)
    assert {j.name: j.spec.parent for j in platform.list_jobs()} == {"hello": None, "child": "hello"}
    updated = platform.update_job(job.id, JobSpec(name="hello", script="hello.py", timeout=120,
                                                  environment={"A": "1"}))
    assert updated.spec.timeout == 120 and updated.spec.environment == {"A": "1"}
    assert child.id != job.id


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
        counts = faulty.counts()
        assert (counts["projects"], counts["jobs"], counts["applications"]) == (1, 8, 3)
        assert counts["injected_errors"] > 0 and counts["injected_429"] > 0
    finally:
        faulty.stop()


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

"""The FULL deploy with platform: cml, against the simulator: the project is a git clone of
this repository, the jobs run as CML jobs (chained), the Ray nodes are simulator apps (real
processes on their own loopback addresses), the Serve app answers, validation passes,
teardown removes every app. Then the same with 20% injected errors and 429s."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from cluster.prometheus import prometheus_binary
from tests.cml_simulator.helpers import KEY, Simulator, runtime_of
from tests.conftest import ROOT, clean_env, cli, our_ray_processes, write_config

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("faults", [(), ("--error-rate", "0.2", "--rate-limit-rate", "0.1",
                                         "--retry-after", "0.2", "--seed", "5")],
                         ids=["clean", "faulty"])
def test_full_deploy_on_cml_through_the_simulator(tmp_path, faults):
    # the clean run also sets up monitoring: Prometheus as a CML application
    monitoring = not faults and prometheus_binary() is not None
    sim = Simulator(tmp_path / "sim", *faults)
    try:
        state = tmp_path / "state"
        config = write_config(tmp_path / "cml.yaml", {
            "cluster_name": "raycml", "platform": "cml", "state_dir": str(state),
            "project_dir": str(ROOT), "jobs_config": str(ROOT / "jobs_config.yaml"),
            "cml": {"host": sim.url, "project_name": "ray-on-cml", "git_url": str(ROOT),
                    "shared_host_network": True, "runtime_identifier": runtime_of(sim)},
            "head": {"cpu": 1, "memory": 1}, "workers": {"count": 2, "cpu": 1, "memory": 1},
            "serve": {"applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                                        "route_prefix": "/hello"}],
                      "management_api": {"enabled": False}},
            "monitoring": {"enabled": monitoring, "scrape_interval_seconds": 2}})
        env = clean_env(CML_API_KEY=KEY)
        result = cli("--deploy", "--auto-approve", config=config, env=env, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        assert KEY not in result.stdout + result.stderr
        counts = sim.counts()
        assert (counts["projects"], counts["jobs"], counts["applications"]) == (
            1, 3, 4 if monitoring else 3)
        if faults:
            assert counts["injected_errors"] > 0 and counts["injected_429"] > 0
        check = subprocess.run([sys.executable, "-m", "validation", "--config", str(config)],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert ("PASS  monitoring" in check.stdout) == monitoring
        proxy = next(line.split(": ", 1)[1] for line in result.stdout.splitlines()
                     if line.strip().startswith("app hello"))
        assert requests.get(proxy, timeout=10).json()["message"] == "hello, world"
        again = cli("--deploy", config=config, env=env, timeout=300)
        assert again.returncode == 0 and again.stdout.count("skipped (satisfied)") == 7
        down = cli("--teardown", "--auto-approve", config=config, env=env, timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr
        assert sim.counts()["applications"] == 0
        deadline = time.monotonic() + 15
        while our_ray_processes(state) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert our_ray_processes(state) == []
    finally:
        sim.stop()


@pytest.fixture
def sim(tmp_path):
    simulator = Simulator(tmp_path / "sim")
    yield simulator
    simulator.stop()


def small_config(tmp_path, sim, name: str, **cml):
    """A CML config on the simulator, for commands that stop before any node is started."""
    return write_config(tmp_path / "cml.yaml", {
        "cluster_name": name, "platform": "cml", "state_dir": str(tmp_path / "state"),
        "project_dir": str(ROOT), "jobs_config": str(ROOT / "jobs_config.yaml"),
        "cml": {"host": sim.url, "shared_host_network": True, **cml}})


def test_a_deploy_without_a_runtime_stops_at_prerequisites_before_creating_anything(tmp_path, sim):
    result = cli("--deploy", "--auto-approve", config=small_config(tmp_path, sim, "norun"),
                 env=clean_env(CML_API_KEY=KEY), timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in out and KEY not in out
    assert "prerequisites" in out and "cml.runtime_identifier" in out
    assert runtime_of(sim) in out  # the choice is named
    counts = sim.counts()
    assert (counts["projects"], counts["jobs"], counts["applications"]) == (0, 0, 0)


def test_verbose_shows_each_platform_call_and_never_the_key(tmp_path, sim):
    config = small_config(tmp_path, sim, "verbose", runtime_identifier=runtime_of(sim))
    env = clean_env(CML_API_KEY=KEY)
    quiet = cli("plan", config=config, env=env, timeout=120)
    loud = cli("plan", "--verbose", config=config, env=env, timeout=120)
    assert quiet.returncode == loud.returncode == 0, loud.stdout + loud.stderr
    assert "/api/v2/" not in quiet.stdout + quiet.stderr
    calls = [line for line in loud.stderr.splitlines() if line.strip().startswith(". CML ")]
    assert any("POST /api/v2/auth/validate_key -> 200 (" in c and " ms)" in c for c in calls)
    assert any(c.split()[2:4] == ["GET", "/api/v2/runtimes"] for c in calls)
    assert KEY not in loud.stdout + loud.stderr and "Bearer" not in loud.stderr

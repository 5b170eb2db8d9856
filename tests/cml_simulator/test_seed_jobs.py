"""A seed-shaped jobs_config.yaml (jobs keyed by id, names with spaces) on CML, end to end
through the simulator: the CLI creates the CML Jobs under their names with spaces, chains
them by parent, runs them in order, and a second run finds them satisfied."""
from __future__ import annotations

import subprocess

import pytest

from cluster.platforms.cml.client import CMLClient
from tests.cml_simulator.helpers import KEY, Simulator, conforms, runtime_of
from tests.conftest import ROOT, clean_env, cli, write_config

pytestmark = pytest.mark.integration

SEED_JOBS = """\
jobs:
  git_repo_sync:
    name: "Git Repo Sync"
    script: "scripts/git_sync.py"
    cpu: 1
    memory: 1
    timeout: 600
  create_env:
    name: "Create Python Environment"
    script: "scripts/setup_environment.py"
    parent_job_key: git_repo_sync
    cpu: 1
    memory: 1
    timeout: 600
"""


def git_repo(path):
    """A project repository with the two job scripts (each leaves a mark in the project)."""
    (path / "scripts").mkdir(parents=True)
    for name in ("git_sync", "setup_environment"):
        (path / "scripts" / f"{name}.py").write_text(
            f"open('{name}.done', 'w').write('ok')\nprint('{name} ran')\n")
    run = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "jobs")
    return path


def test_seed_jobs_with_spaces_run_as_chained_cml_jobs(tmp_path):
    sim = Simulator(tmp_path / "sim")
    try:
        (tmp_path / "jobs_config.yaml").write_text(SEED_JOBS)
        config = write_config(tmp_path / "cml.yaml", {
            "cluster_name": "seedjobs", "platform": "cml", "state_dir": str(tmp_path / "state"),
            "project_dir": str(ROOT), "jobs_config": str(tmp_path / "jobs_config.yaml"),
            "cml": {"host": sim.url, "project_name": "Seed Jobs Project",
                    "control_plane": "embedded",  # on test: the jobs, not the control app
                    "git_url": str(git_repo(tmp_path / "repo")),
                    "runtime_identifier": runtime_of(sim)},
            "serve": {"management_api": {"enabled": False}}})
        env = clean_env(CML_API_KEY=KEY)
        for checkpoint in ("prerequisites", "project_setup", "job_creation"):
            result = cli("--checkpoint", checkpoint, "--auto-approve", config=config, env=env,
                         timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr

        client = CMLClient(sim.url, KEY)
        [project] = client.request("GET", "/projects", "list projects")["projects"]
        assert project["name"] == "Seed Jobs Project" and project["slug"] == "seed-jobs-project"
        jobs = client.request("GET", f"/projects/{project['id']}/jobs", "list jobs")
        conforms(jobs, "ListJobsResponse")
        by_name = {j["name"]: j for j in jobs["jobs"]}
        assert set(by_name) == {"Git Repo Sync", "Create Python Environment"}
        assert by_name["Create Python Environment"]["parent_id"] == by_name["Git Repo Sync"]["id"]
        for job in by_name.values():
            runs = client.request("GET", f"/projects/{project['id']}/jobs/{job['id']}/runs",
                                  "list runs")["job_runs"]
            assert [r["status"] for r in runs] == ["ENGINE_SUCCEEDED"], job["name"]
        project_dir = tmp_path / "sim" / "projects" / project["id"]
        assert (project_dir / "git_sync.done").exists()
        assert (project_dir / "setup_environment.done").exists()

        again = cli("--checkpoint", "job_creation", config=config, env=env, timeout=120)
        assert again.returncode == 0 and "skipped (satisfied)" in again.stdout, again.stdout
    finally:
        sim.stop()

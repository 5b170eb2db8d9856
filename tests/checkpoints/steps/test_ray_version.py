"""The Ray the nodes run: on CML they start in the project venv, whose Ray the launch job
records (``ray_version`` in the project files); a Ray other than ``ray.version`` is a
problem that names both versions, and job_creation does not verify with it."""
from __future__ import annotations

from checkpoints import BY_NAME
from checkpoints.steps.job_creation import desired_jobs, ray_version_problems
from cluster.config import parse_config
from cluster.platforms.cml.platform import CMLPlatform
from tests.fakes import job_world, succeed_all, world

PINNED = {"version": "2.40.0"}


def test_the_recorded_ray_is_the_pinned_one_no_problem(tmp_path):
    w = world(tmp_path, ray=PINNED)
    w.platform.files["ray_version"] = "2.40.0"
    assert ray_version_problems(w.ctx) == []


def test_another_recorded_ray_is_a_problem_naming_both_versions(tmp_path):
    w = world(tmp_path, ray=PINNED)
    w.platform.files["ray_version"] = "2.9.3"
    problems = ray_version_problems(w.ctx)
    assert len(problems) == 1
    assert "Ray 2.9.3" in problems[0] and "ray.version is 2.40.0" in problems[0]
    assert "ray==2.40.0" in problems[0]  # and what to pin


def test_job_creation_does_not_verify_while_the_nodes_would_run_another_ray(tmp_path):
    w = job_world(tmp_path, ray=PINNED)
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    w.platform.files["ray_version"] = "2.40.0"
    assert BY_NAME["job_creation"].verify(w.ctx) == []
    w.platform.files["ray_version"] = "2.9.3"
    assert any("Ray 2.9.3" in p for p in BY_NAME["job_creation"].verify(w.ctx))


def test_cml_nodes_run_in_the_project_venv_unless_every_app_shares_one_host():
    def platform(**cml):
        config = parse_config({"platform": "cml", "cml": {"host": "https://ml.example",
                                                          "api_key": "k" * 20, **cml}},
                              environ={})
        return CMLPlatform(config)
    assert platform().node_environment()["RAYDEPLOY_VENV"] == ".venv"
    assert "RAYDEPLOY_VENV" not in platform(shared_host_network=True).node_environment()

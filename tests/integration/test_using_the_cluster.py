"""The deployed cluster works the way Ray users use a cluster: the job line the deploy prints
runs a user's script with the cluster's ``python``, ``--status --format json`` says the same
as data, validation runs a Ray job on every node, and the Ray Client connects."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, clean_env

pytestmark = pytest.mark.integration

SCRIPT = """\
import ray
ray.init()
print("nodes:", sum(n["Alive"] for n in ray.nodes()))
print("square:", ray.get(ray.remote(num_cpus=0)(lambda x: x * x).remote(7)))
"""


def job_line(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines()
                if line.strip().startswith("a Ray job"))


def test_the_printed_job_line_runs_a_users_script_with_the_clusters_python(cluster, tmp_path):
    token = (cluster.state_dir / "ray_token").read_text().strip()
    line = job_line(cluster.deploy_output)
    assert f"RAY_AUTH_TOKEN_PATH={cluster.state_dir / 'ray_token'}" in line
    assert token not in cluster.deploy_output  # where the token is, never the token
    assert "PASS  ray_job" in cluster.deploy_output  # validation ran a job on every node
    # as a user would: their script in their own directory, the line pasted into a shell
    (tmp_path / "my_script.py").write_text(SCRIPT)
    env = {k: v for k, v in clean_env().items() if not k.startswith("RAY_AUTH")}
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "nodes: 3" in done.stdout and "square: 49" in done.stdout


def test_status_as_json_says_where_and_how(cluster):
    result = cluster.cli("--status", "--format", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["last_run"]["status"] == "succeeded"
    assert sum(n["alive"] for n in status["nodes"]) == 3
    usage, endpoints = status["usage"], status["endpoints"]
    assert usage["jobs_address"] == endpoints["dashboard_url"]
    assert usage["token_path"] == str(cluster.state_dir / "ray_token")
    assert usage["client_address"] == endpoints["client_address"]
    assert usage["client_address"].startswith("ray://" + endpoints["head_address"].split(":")[0])
    assert (cluster.state_dir / "ray_token").read_text().strip() not in result.stdout


def test_the_ray_client_connects_and_runs_a_task(cluster, record_property):
    status = json.loads(cluster.cli("--status", "--format", "json").stdout)
    address = status["usage"]["client_address"]
    code = (f"import ray; ray.init({address!r}, logging_level='ERROR'); "
            f"print('got', ray.get(ray.remote(num_cpus=0)(lambda: 6 * 7).remote()))")
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=status["usage"]["token_path"])
    env.pop("RAY_AUTH_TOKEN", None)
    outcomes = []
    for _ in range(3):  # README "Using the cluster": a connection Ray's proxy fails is tried again
        try:
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            outcomes.append("hung 60 s")
            continue
        if done.returncode == 0 and "got 42" in done.stdout:
            break
        outcomes.append(done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"])
    else:
        pytest.fail(f"the Ray Client never connected to {address}: {outcomes}")
    record_property("ray_client_failed_tries", outcomes)

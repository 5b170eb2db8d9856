"""The validation job (cluster/job_check.py) on a fake dashboard: what it says and that it
cleans up. The real thing runs in tests/integration/test_using_the_cluster.py."""
from __future__ import annotations

import base64
import re

from cluster.health import all_checks
from cluster.job_check import DRIVER, entrypoint, job_check
from tests.fakes import world


def workers(w, n=2):
    return [w.worker(i)[1] for i in range(1, n + 1)]


def test_a_job_that_reaches_every_node_passes_and_is_removed(tmp_path):
    w = world(tmp_path)
    workers(w)
    check = job_check(w.ctx.cluster)
    assert check.ok and "each of the 3 nodes" in check.detail
    assert w.ray.submitted == {}  # deleted once ended


def test_a_node_that_takes_no_task_is_named_by_its_app_and_address(tmp_path):
    w = world(tmp_path)
    _, silent = workers(w)
    w.ray.taskless.add(silent)
    check = job_check(w.ctx.cluster, task_seconds=5)
    assert not check.ok
    assert re.search(r"no task ran within 5s on rd-worker-2 \(\S+\)$", check.detail), check.detail
    assert "rd-worker-1" not in check.detail


def test_a_driver_that_fails_says_why_with_the_end_of_its_log(tmp_path):
    w = world(tmp_path)
    w.ray.job_end = ("FAILED", "Traceback (most recent call last):\n  File x\n"
                               "ModuleNotFoundError: No module named 'ray'\n")
    check = job_check(w.ctx.cluster)
    assert not check.ok and "FAILED" in check.detail
    assert check.detail.endswith("ModuleNotFoundError: No module named 'ray'")
    assert w.ray.submitted == {}


def test_the_entrypoint_is_python_with_the_driver_and_its_time_limit():
    command = entrypoint(7, ("CDSW_APIV2_KEY",))
    assert command.startswith('python -c "')
    code = base64.b64decode(re.search(r"b64decode\('([^']+)'\)", command).group(1)).decode()
    assert code.startswith("TASK_SECONDS = 7.0\n") and code.endswith(DRIVER)
    # what the tasks look for: ours, and what the platform names
    assert "RAYDEPLOY_TOKEN" in code and "CDSW_APIV2_KEY" in code
    compile(code, "driver", "exec")  # what the job runs is valid Python


def test_the_api_health_view_submits_no_job_validation_does(tmp_path):
    w = world(tmp_path, apps=())
    workers(w)
    assert "ray_job" not in [c.name for c in all_checks(w.ctx.cluster)]
    assert "ray_job" in [c.name for c in all_checks(w.ctx.cluster, ray_job=True)]


def test_a_task_that_holds_the_workspace_key_fails_the_check(tmp_path):
    w = world(tmp_path)
    workers(w)
    w.ray.task_secrets = ["CDSW_APIV2_KEY"]
    check = job_check(w.ctx.cluster)
    assert not check.ok and check.detail == "the cluster's tasks hold CDSW_APIV2_KEY"


def test_a_deploy_reuses_a_pass_on_the_same_nodes_and_runs_again_when_they_change(tmp_path):
    w = world(tmp_path)
    workers(w)
    assert job_check(w.ctx.cluster, reuse=True).ok  # none recorded yet: a job runs
    w.ray.job_end = ("FAILED", "it would fail now")  # so a job that runs again is seen
    again = job_check(w.ctx.cluster, reuse=True)
    assert again.ok and "the same nodes: not run again" in again.detail
    w.worker(3)  # another node: the proof does not cover it
    assert not job_check(w.ctx.cluster, reuse=True).ok


def test_a_fresh_job_that_fails_ends_the_reuse_of_an_earlier_pass(tmp_path):
    w = world(tmp_path)
    workers(w)
    assert job_check(w.ctx.cluster).ok
    w.ray.job_end = ("FAILED", "it fails now")
    assert not job_check(w.ctx.cluster).ok  # python -m validation: always a fresh job
    assert not job_check(w.ctx.cluster, reuse=True).ok  # the earlier pass no longer stands

"""The validation job (cluster/job_check.py) on a fake dashboard: what it says and that it
cleans up. The real thing runs in tests/integration/test_using_the_cluster.py."""
from __future__ import annotations

import base64
import re

from cluster.health import all_checks
from cluster.job_check import DRIVER, SETTLE_SECONDS, ahead, entrypoint, job_check
from tests.fakes import FakeClock, world


def workers(w, n=2):
    return [w.worker(i)[1] for i in range(1, n + 1)]


def validation_jobs(w) -> list[str]:
    return [k for k in w.ray.submitted if k.startswith("raydeploy-validation-")]


def test_a_job_that_reaches_every_node_passes_and_a_later_check_removes_it_once_settled(
        tmp_path):
    """Ray writes a job deleted as it ends back as FAILED (ray-project/ray#65251): the job
    stays until a later check, which removes it once it ended SETTLE_SECONDS ago, and
    nothing else the cluster ran."""
    w = world(tmp_path)
    workers(w)
    now_ms = w.ctx.cluster.clock.time() * 1000
    w.ray.submitted["user-job"] = {"status": "SUCCEEDED", "logs": "", "metadata": {},
                                   "end_time": now_ms - 60_000}
    check = job_check(w.ctx.cluster)
    assert check.ok and "each of the 3 nodes" in check.detail
    [first] = validation_jobs(w)
    w.ray.submitted[first]["end_time"] = now_ms - (SETTLE_SECONDS - 1) * 1000
    assert job_check(w.ctx.cluster).ok
    assert first in w.ray.submitted and len(validation_jobs(w)) == 2  # too recent to delete
    w.ray.submitted[first]["end_time"] = now_ms - SETTLE_SECONDS * 1000
    assert job_check(w.ctx.cluster).ok
    assert first not in w.ray.submitted and "user-job" in w.ray.submitted


def test_the_answer_is_the_drivers_line_while_its_job_still_ends(tmp_path):
    """The result is taken as soon as the driver printed it: its shutdown is no part of the
    answer, and the job is not stopped (it ends by itself)."""
    w = world(tmp_path)
    workers(w)
    w.ray.job_end = ("RUNNING", "")
    assert job_check(w.ctx.cluster).ok
    assert [w.ray.submitted[j]["status"] for j in validation_jobs(w)] == ["RUNNING"]


def test_a_result_line_still_being_written_is_not_taken_for_the_answer(tmp_path):
    w = world(tmp_path)
    workers(w)
    w.ray.job_end = ("RUNNING", 'RAYDEPLOY_NODES {"alive": ["node-rd-he')  # no end of line yet
    w.ctx.cluster.clock = FakeClock()
    check = job_check(w.ctx.cluster, task_seconds=5)
    assert not check.ok and "still RUNNING" in check.detail  # never parsed half


def test_a_job_that_never_answers_fails_the_check_and_is_stopped(tmp_path):
    w = world(tmp_path)
    workers(w)
    w.ray.job_end = ("RUNNING", "still importing\n")
    w.ctx.cluster.clock = FakeClock()  # its waits pass at once
    check = job_check(w.ctx.cluster, task_seconds=5)
    assert not check.ok and "still RUNNING after 65s" in check.detail
    assert check.detail.endswith("its log ends: still importing")
    assert [w.ray.submitted[j]["status"] for j in validation_jobs(w)] == ["STOPPED"]


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
    assert [w.ray.submitted[j]["status"] for j in validation_jobs(w)] == ["FAILED"]


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
    assert again.ok and "the same nodes are ALIVE now (not run again)" in again.detail
    w.worker(3)  # another node: the proof does not cover it
    assert not job_check(w.ctx.cluster, reuse=True).ok


def test_a_fresh_job_that_fails_ends_the_reuse_of_an_earlier_pass(tmp_path):
    w = world(tmp_path)
    workers(w)
    assert job_check(w.ctx.cluster).ok
    w.ray.job_end = ("FAILED", "it fails now")
    assert not job_check(w.ctx.cluster).ok  # python -m validation: always a fresh job
    assert not job_check(w.ctx.cluster, reuse=True).ok  # the earlier pass no longer stands


def test_validation_submits_the_job_before_its_other_checks_and_says_it_last(tmp_path):
    """The driver starts (a second, on a real cluster) while the resource and Serve checks run."""
    w = world(tmp_path)
    workers(w)
    w.ray.app("hello", "/hello")
    submitted_by_then, probe = [], w.ctx.cluster.serve.probe
    w.ctx.cluster.serve.probe = lambda path, timeout=3.0: (
        submitted_by_then.append(len(w.ray.submitted)), probe(path, timeout))[1]
    checks = all_checks(w.ctx.cluster, ray_job=True)
    assert submitted_by_then and set(submitted_by_then) == {1}
    assert checks[-1].name == "ray_job" and all(c.ok for c in checks)


def test_a_job_started_ahead_once_the_nodes_are_there_is_the_one_validation_uses(tmp_path):
    """A deploy starts the job while Serve deploys: only once every configured node is
    ALIVE and no pass stands; validation then waits for it, and stands on its pass (no
    second job)."""
    w = world(tmp_path)
    w.worker(1)
    assert ahead(w.ctx.cluster) is None and validation_jobs(w) == []  # a worker still missing
    w.worker(2)
    wait = ahead(w.ctx.cluster)
    assert wait is not None and len(validation_jobs(w)) == 1
    checks = all_checks(w.ctx.cluster, ray_job=True, reuse_job=True, job_ahead=wait)
    job = next(c for c in checks if c.name == "ray_job")
    assert job.ok and validation_jobs(w)[0] in job.detail and len(validation_jobs(w)) == 1
    assert ahead(w.ctx.cluster) is None  # a pass stands for these nodes: nothing to start


def test_a_job_started_ahead_that_failed_is_run_again_by_validation(tmp_path):
    """The early job's failure is not the answer: validation runs its own, and says it."""
    w = world(tmp_path)
    workers(w)
    w.ray.job_end = ("FAILED", "a node was still starting")
    wait = ahead(w.ctx.cluster)
    wait()
    [early] = validation_jobs(w)
    w.ray.job_end = ("SUCCEEDED", "")
    check = job_check(w.ctx.cluster, reuse=True)
    assert check.ok and "each of the 3 nodes" in check.detail
    assert validation_jobs(w) and early not in validation_jobs(w)  # its own (the early one swept)

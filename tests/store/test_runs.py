"""Runs and their checkpoint results as the store keeps them: results in the run's order,
finished_at set by the status, a compare-and-set of the status, only known fields written."""
import pytest

from core.facts import Outcome, RunStatus
from store import Store
from tests.fakes import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def runs(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock).runs


def test_a_new_run_has_a_pending_result_for_each_checkpoint_in_its_order(runs, clock):
    run = runs.create_run("checkpoints", ["worker_launch", "head_launch", "monitoring"], "alice",
                          "api", {"force": True})
    assert run == runs.get_run(run.id)
    assert (run.status, run.selection, run.options) == \
        (RunStatus.RUNNING, ("worker_launch", "head_launch", "monitoring"), {"force": True})
    assert [(r.checkpoint, r.status) for r in run.checkpoints] == [
        ("worker_launch", Outcome.PENDING), ("head_launch", Outcome.PENDING),
        ("monitoring", Outcome.PENDING)]
    assert run.created_at == run.updated_at == clock.now and run.finished_at is None
    assert runs.get_run("run-missing") is None


def test_a_run_may_start_in_another_status(runs):
    run = runs.create_run("operation", [], "alice", "api", status=RunStatus.AWAITING_APPROVAL)
    assert run.status == RunStatus.AWAITING_APPROVAL and run.checkpoints == () and run.options == {}


def test_a_finishing_status_sets_finished_at_and_a_resumed_run_clears_it(runs, clock):
    run = runs.create_run("deploy", ["a"], "alice", "cli")
    clock.advance(10)
    runs.update_run(run.id, status=RunStatus.FAILED, error="boom", failed_checkpoint="a")
    failed = runs.get_run(run.id)
    assert (failed.finished_at, failed.updated_at, failed.error, failed.failed_checkpoint) == \
        (clock.now, clock.now, "boom", "a")
    clock.advance(5)
    runs.update_run(run.id, status=RunStatus.RUNNING)
    resumed = runs.get_run(run.id)
    assert resumed.finished_at is None and resumed.updated_at == clock.now
    runs.update_run(run.id, options={"resumed": 1})
    assert runs.get_run(run.id).options == {"resumed": 1}


def test_only_run_fields_can_be_updated(runs):
    run = runs.create_run("deploy", ["a"], "alice", "cli")
    with pytest.raises(ValueError, match="requester"):
        runs.update_run(run.id, requester="mallory")
    assert runs.get_run(run.id).requester == "alice"


def test_the_status_is_set_only_from_an_allowed_one(runs):
    run = runs.create_run("deploy", ["a"], "alice", "cli")
    assert runs.set_run_status_if(run.id, [RunStatus.AWAITING_APPROVAL], status="cancelled") is False
    assert runs.get_run(run.id).status == RunStatus.RUNNING
    assert runs.set_run_status_if(run.id, ["running", "failed"], status=RunStatus.CANCELLED,
                                  error="stop") is True
    assert (runs.get_run(run.id).status, runs.get_run(run.id).error) == (RunStatus.CANCELLED, "stop")
    assert runs.set_run_status_if("run-missing", ["running"], status="failed") is False


def test_a_result_records_its_plan_and_only_result_fields(runs):
    run = runs.create_run("deploy", ["a", "b"], "alice", "cli")
    runs.update_result(run.id, "b", status=Outcome.SUCCEEDED, started_at=1.0, finished_at=3.0,
                       duration=2.0, plan={"actions": [{"kind": "create"}]}, fingerprint="fp")
    result = runs.get_run(run.id).result("b")
    assert (result.status, result.duration, result.plan, result.fingerprint) == \
        (Outcome.SUCCEEDED, 2.0, {"actions": [{"kind": "create"}]}, "fp")
    assert runs.get_run(run.id).result("a").status == Outcome.PENDING  # only the one named
    with pytest.raises(ValueError, match="checkpoint result fields"):
        runs.update_result(run.id, "a", requester="mallory")


def test_runs_are_listed_newest_first_by_status_and_limited(runs, clock):
    made = []
    for status in ("succeeded", "failed", "running", "failed"):
        clock.advance(1)
        run = runs.create_run("deploy", ["a"], "alice", "cli")
        runs.update_run(run.id, status=status)
        made.append(run.id)
    assert [r.id for r in runs.list_runs()] == made[::-1]
    assert [r.id for r in runs.list_runs(limit=2)] == [made[3], made[2]]
    assert [r.id for r in runs.list_runs(statuses=[RunStatus.FAILED])] == [made[3], made[1]]
    assert [r.id for r in runs.list_runs(statuses=["succeeded", "running"])] == [made[2], made[0]]
    assert runs.latest_run().id == made[3]


def test_runs_made_in_the_same_instant_are_listed_latest_first(runs):
    first = runs.create_run("deploy", ["a"], "alice", "cli")
    second = runs.create_run("deploy", ["a"], "alice", "cli")
    assert [r.id for r in runs.list_runs()] == [second.id, first.id]


def test_no_run_means_no_latest_run(runs):
    assert runs.latest_run() is None and runs.list_runs() == []


def test_the_last_result_of_a_checkpoint_is_the_latest_one_that_ran_in_any_run(runs):
    assert runs.last_result("head_launch") is None
    older = runs.create_run("deploy", ["head_launch"], "alice", "cli")
    newer = runs.create_run("deploy", ["head_launch"], "alice", "cli")
    runs.update_result(newer.id, "head_launch", status="failed", started_at=5.0, finished_at=6.0)
    runs.update_result(older.id, "head_launch", status="succeeded", started_at=1.0, finished_at=2.0)
    runs.create_run("deploy", ["head_launch"], "alice", "cli")  # pending: never ran
    last = runs.last_result("head_launch")
    assert (last.run_id, last.status) == (newer.id, Outcome.FAILED)
    still = runs.create_run("deploy", ["head_launch"], "alice", "cli")
    runs.update_result(still.id, "head_launch", status="running", started_at=9.0)
    assert runs.last_result("head_launch").run_id == still.id  # started, not finished yet

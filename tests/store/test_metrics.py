"""What /metrics reads from the store at scrape time: runs by status, checkpoint durations,
how long gates waited, pending approvals and decisions by source."""
import pytest

from store import Store
from tests.fakes import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock)


def test_an_empty_store_counts_nothing(store):
    metrics = store.metrics
    assert (metrics.run_counts(), metrics.checkpoint_durations(), metrics.gate_waits(),
            metrics.pending_approvals(), metrics.approval_counts()) == ({}, [], [], 0, [])


def test_runs_are_counted_by_status(store):
    for status in ("succeeded", "failed", "succeeded", None):
        run = store.runs.create_run("deploy", ["a"], "alice", "cli")
        if status:
            store.runs.update_run(run.id, status=status)
    assert store.metrics.run_counts() == {"succeeded": 2, "failed": 1, "running": 1}


def test_only_checkpoints_that_took_a_time_have_a_duration(store):
    run = store.runs.create_run("deploy", ["a", "b", "c"], "alice", "cli")
    store.runs.update_result(run.id, "a", status="succeeded", duration=1.5)
    store.runs.update_result(run.id, "b", status="failed", duration=0.25)
    assert sorted(store.metrics.checkpoint_durations()) == [("a", "succeeded", 1.5),
                                                            ("b", "failed", 0.25)]


def test_a_gate_waits_from_its_request_until_it_is_closed(store, clock):
    store.approvals.open_approval_request("run-1", "worker_launch", "fp1", {}, True, [], "alice")
    store.approvals.open_approval_request("run-2", "head_launch", "fp2", {}, True, [], "alice")
    clock.advance(42)
    store.approvals.close_approval_requests("run-1")
    assert store.metrics.gate_waits() == [("worker_launch", 42.0)]
    assert store.metrics.pending_approvals() == 1


def test_decisions_are_counted_by_decision_and_source(store):
    for decision, source in (("approved", "cli"), ("approved", "cli"), ("approved", "auto"),
                             ("rejected", "api")):
        store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision=decision,
                                     approver="bob", source=source)
    assert sorted(store.metrics.approval_counts()) == [("approved", "auto", 1),
                                                       ("approved", "cli", 2),
                                                       ("rejected", "api", 1)]

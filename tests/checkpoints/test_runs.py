"""The run state machine: status changes only along the table, and cancelling a run (needs the
operator role; audited whether it happens or not; closes the run's approval requests)."""
import pytest

from checkpoints.access import Actor
from checkpoints.runs import TRANSITIONS, cancel, transition
from core.errors import Conflict, Forbidden, NotFound
from core.facts import FINISHED, RESUMABLE, RunStatus
from store import Store
from store.keys import AUDIT_KEY_ENV
from tests.fakes import FakeClock

OPERATOR = Actor("olga", "api", frozenset({"operator"}), client_address="10.0.0.7")
VIEWER = Actor("vera", "api", frozenset({"viewer"}))


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    return Store(tmp_path / "state", clock=FakeClock())


def run_in(store, status: RunStatus = RunStatus.RUNNING):
    run = store.runs.create_run("deploy", ["worker_launch"], "alice", "cli")
    if status != RunStatus.RUNNING:
        store.runs.update_run(run.id, status=status)
    return run.id


def status_of(store, run_id):
    return store.runs.get_run(run_id).status


def test_the_table_names_every_status_and_a_final_one_leads_nowhere():
    assert set(TRANSITIONS) == set(RunStatus)
    for status in FINISHED - RESUMABLE:
        assert TRANSITIONS[status] == set(), status
    for status in RESUMABLE:
        assert RunStatus.RUNNING in TRANSITIONS[status], status  # --resume


def test_a_run_waits_for_approval_resumes_and_succeeds(store):
    run_id = run_in(store)
    for status in (RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING, RunStatus.SUCCEEDED):
        transition(store, run_id, status)
        assert status_of(store, run_id) == status
    assert store.runs.get_run(run_id).finished_at is not None


def test_a_failed_or_interrupted_run_may_only_be_resumed(store):
    for stopped in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        run_id = run_in(store, stopped)
        with pytest.raises(Conflict):
            transition(store, run_id, RunStatus.SUCCEEDED)
        transition(store, run_id, RunStatus.RUNNING)
        assert status_of(store, run_id) == RunStatus.RUNNING


@pytest.mark.parametrize("final", [RunStatus.SUCCEEDED, RunStatus.REJECTED, RunStatus.CANCELLED])
def test_a_finished_run_never_changes_again(store, final):
    run_id = run_in(store, final)
    for to in (RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED):
        with pytest.raises(Conflict, match=f"cannot go from {final} to {to}"):
            transition(store, run_id, to, error="nope")
    run = store.runs.get_run(run_id)
    assert run.status == final and run.error is None


def test_a_change_carries_its_fields(store):
    run_id = run_in(store)
    transition(store, run_id, RunStatus.FAILED, error="boom", failed_checkpoint="worker_launch")
    run = store.runs.get_run(run_id)
    assert (run.error, run.failed_checkpoint) == ("boom", "worker_launch")


def test_a_missing_run_cannot_change(store):
    with pytest.raises(Conflict, match="run run-x cannot go from missing to running"):
        transition(store, "run-x", RunStatus.RUNNING)


# -- cancel ----------------------------------------------------------------------------------
def test_cancelling_a_waiting_run_ends_it_closes_its_requests_and_is_audited(store):
    run_id = run_in(store, RunStatus.AWAITING_APPROVAL)
    store.approvals.open_approval_request(run_id, "worker_launch", "fp", {}, True, [], "alice")
    other = store.approvals.open_approval_request("run-other", "head_launch", "fp", {}, True, [],
                                                  "alice")
    run = cancel(store, run_id, OPERATOR, reason="wrong config")
    assert run.status == RunStatus.CANCELLED and run.error == "cancelled by olga: wrong config"
    assert [r.id for r in store.approvals.approval_requests(open_only=True)] == [other.id]
    (event,) = store.audit_log.audit_events()
    assert (event.action, event.target, event.result, event.principal, event.run_id) == \
        ("run.cancel", run_id, "ok", "olga", run_id)
    assert event.detail == {"reason": "wrong config"} and event.client_address == "10.0.0.7"
    assert [e.kind for e in store.events.read(run_id=run_id)] == ["run.cancelled"]


def test_cancelling_without_a_reason_says_who_did(store):
    run_id = run_in(store)
    assert cancel(store, run_id, OPERATOR).error == "cancelled by olga"
    assert next(store.audit_log.audit_events()).detail == {}


def test_a_viewer_cannot_cancel_and_the_refusal_is_audited(store):
    run_id = run_in(store)
    with pytest.raises(Forbidden, match="vera lacks the operator role needed to cancel runs"):
        cancel(store, run_id, VIEWER)
    assert status_of(store, run_id) == RunStatus.RUNNING
    (event,) = store.audit_log.audit_events()
    assert (event.action, event.principal, event.result) == ("run.cancel", "vera", "refused")
    assert "lacks the operator role" in event.detail["reason"]
    assert store.events.read(run_id=run_id) == []


def test_a_finished_run_cannot_be_cancelled_and_its_requests_stay_as_they_were(store):
    run_id = run_in(store, RunStatus.REJECTED)
    request = store.approvals.open_approval_request(run_id, "worker_launch", "fp", {}, True, [],
                                                    "alice")
    with pytest.raises(Conflict, match="cannot go from rejected to cancelled"):
        cancel(store, run_id, OPERATOR, reason="late")
    assert status_of(store, run_id) == RunStatus.REJECTED
    assert store.approvals.get_approval_request(request.id).closed_at is None
    (event,) = store.audit_log.audit_events()
    assert event.result == "refused" and "cannot go from rejected" in event.detail["reason"]


def test_cancelling_a_run_that_does_not_exist_is_not_found(store):
    with pytest.raises(NotFound, match="run run-x not found"):
        cancel(store, "run-x", OPERATOR)

"""Approval requests (one open request a gate) and decision records (append-only, each one a
run event too), as the store keeps them."""
import pytest

from core.facts import Decision
from store import Store
from tests.fakes import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock)


def request(store, run_id="run-1", checkpoint="worker_launch", fingerprint="fp1", **kw):
    args = dict(plan={"actions": [{"kind": "delete"}]}, destructive=True, reasons=["removes w-2"],
                requester="alice")
    args.update(kw)
    return store.approvals.open_approval_request(run_id, checkpoint, fingerprint, **args)


def test_a_request_reads_back_with_its_plan_reasons_and_flags(store, clock):
    made = request(store, breaking=True)
    assert made == store.approvals.get_approval_request(made.id)
    assert (made.plan, made.reasons, made.destructive, made.breaking) == \
        ({"actions": [{"kind": "delete"}]}, ("removes w-2",), True, True)
    assert (made.created_at, made.closed_at) == (clock.now, None)
    assert store.approvals.get_approval_request("req-missing") is None


def test_asking_again_for_the_same_plan_returns_the_open_request(store):
    first = request(store)
    assert request(store, reasons=["said again"]) == first
    assert len(store.approvals.approval_requests()) == 1


def test_a_new_plan_at_a_gate_closes_the_request_it_replaces(store, clock):
    old = request(store, fingerprint="fp1")
    clock.advance(5)
    new = request(store, run_id="run-2", fingerprint="fp2")
    assert store.approvals.open_request_for("worker_launch") == new
    assert store.approvals.get_approval_request(old.id).closed_at == clock.now
    assert [r.id for r in store.approvals.approval_requests(open_only=True)] == [new.id]
    assert [r.id for r in store.approvals.approval_requests()] == [new.id, old.id]  # newest first


def test_requests_at_other_gates_stay_open(store):
    workers = request(store, checkpoint="worker_launch")
    head = request(store, checkpoint="head_launch")
    assert store.approvals.open_request_for("worker_launch") == workers
    assert store.approvals.open_request_for("head_launch") == head
    assert store.approvals.open_request_for("serve_deploy") is None


def test_closing_a_runs_requests_closes_only_its_own_at_the_gate_named(store, clock):
    workers = request(store, run_id="run-1", checkpoint="worker_launch")
    head = request(store, run_id="run-1", checkpoint="head_launch")
    other = request(store, run_id="run-2", checkpoint="serve_deploy")
    store.approvals.close_approval_requests("run-1", "head_launch")
    assert {r.id for r in store.approvals.approval_requests(open_only=True)} == {workers.id, other.id}
    clock.advance(3)
    store.approvals.close_approval_requests("run-1")
    assert [r.id for r in store.approvals.approval_requests(open_only=True)] == [other.id]
    assert store.approvals.get_approval_request(head.id).closed_at == clock.now - 3  # kept


def test_a_decision_is_recorded_with_its_expiry_and_as_a_run_event(store, clock):
    approval = store.approvals.add_approval(
        checkpoint="worker_launch", plan_fingerprint="fp1", decision="approved", approver="bob",
        source="api", run_id="run-1", reason="looks right", acknowledge_risks=True,
        ttl_seconds=60, claimed_by="Robert")
    assert approval == store.approvals.get_approval(approval.id)
    assert approval.decision is Decision.APPROVED and approval.acknowledge_risks is True
    assert approval.expires_at == clock.now + 60 and approval.claimed_by == "Robert"
    (event,) = store.events.read(run_id="run-1")
    assert (event.kind, event.checkpoint, event.message) == \
        ("approval.approved", "worker_launch", "approved worker_launch by bob: looks right")
    assert event.data["approval_id"] == approval.id and event.data["plan_fingerprint"] == "fp1"


def test_a_decision_without_a_lifetime_never_expires(store):
    approval = store.approvals.add_approval(checkpoint="c", plan_fingerprint="f",
                                            decision=Decision.REJECTED, approver="bob",
                                            source="cli")
    assert approval.expires_at is None and approval.decision is Decision.REJECTED


def test_decisions_are_filtered_by_gate_and_plan_newest_first(store, clock):
    def decide(checkpoint, fingerprint, approver):
        clock.advance(1)
        return store.approvals.add_approval(checkpoint=checkpoint, plan_fingerprint=fingerprint,
                                            decision="approved", approver=approver, source="api")
    decide("a", "f1", "first")
    decide("a", "f2", "second")
    decide("b", "f1", "third")
    assert [d.approver for d in store.approvals.decisions()] == ["third", "second", "first"]
    assert [d.approver for d in store.approvals.decisions("a")] == ["second", "first"]
    assert [d.approver for d in store.approvals.decisions("a", "f1")] == ["first"]
    assert [d.approver for d in store.approvals.decisions(fingerprint="f1")] == ["third", "first"]


def test_decisions_made_in_the_same_instant_keep_the_order_they_were_made_in(store):
    for name in ("one", "two", "three"):  # a fake clock that does not move
        store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision="approved",
                                     approver=name, source="api")
    assert [d.approver for d in store.approvals.decisions("c")] == ["three", "two", "one"]


def test_a_revocation_is_a_record_of_its_own_naming_the_one_it_revokes(store):
    given = store.approvals.add_approval(checkpoint="c", plan_fingerprint="f",
                                         decision="approved", approver="bob", source="api")
    assert store.approvals.revoked_ids() == set()
    store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision="revoked",
                                 approver="eve", source="api", revokes=given.id)
    assert store.approvals.revoked_ids() == {given.id}
    assert store.approvals.get_approval(given.id).decision is Decision.APPROVED  # not rewritten


def test_an_unknown_decision_is_refused_and_nothing_is_recorded(store):
    with pytest.raises(ValueError):
        store.approvals.add_approval(checkpoint="c", plan_fingerprint="f", decision="maybe",
                                     approver="bob", source="api")
    assert store.approvals.decisions() == [] and store.events.read() == []

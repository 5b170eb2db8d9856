import pytest

from checkpoints import approvals
from checkpoints.access import Actor
from checkpoints.errors import AlreadyDecided, NoPendingApproval, PlanChanged, SelfApprovalForbidden
from checkpoints.plan import Gate
from core.errors import Invalid
from core.records import ApprovalPolicy
from store import Store
from tests.fakes import FakeClock

DESTRUCTIVE = Gate(required=True, destructive=True)
PLAIN = Gate(required=True, destructive=False)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path, clock=clock)


def awaiting(store, fingerprint="fp1", destructive=True, requester="alice", checkpoint="worker_launch"):
    run = store.runs.create_run("deploy", [checkpoint], requester, "cli")
    store.approvals.open_approval_request(run.id, checkpoint, fingerprint, {"actions": []}, destructive,
                                ["because"], requester)
    return run.id


def shown(store, checkpoint="worker_launch") -> dict:
    """The run and plan a decider is shown: the request awaiting approval at ``checkpoint``."""
    request = store.approvals.open_request_for(checkpoint)
    return {"run_id": request.run_id if request else "run-none",
            "fingerprint": request.fingerprint if request else "none"}


def approve(store, approver="bob", roles=frozenset({"approver"}), **kw):
    """``approvals.decide`` with the ballot and rules of ``kw`` (their fields by name)."""
    args = dict(checkpoint="worker_launch", decision="approve", ttl_seconds=60,
                acknowledge_risks=True, **shown(store, kw.get("checkpoint", "worker_launch")))
    args.update(kw)
    ballot = approvals.Ballot(args["decision"], args["run_id"], args["fingerprint"],
                              args.get("reason"), args["acknowledge_risks"],
                              args.get("acknowledge_breaking", False))
    rules = approvals.GateRules(args.get("policy", approvals.DEFAULT_POLICY), args["ttl_seconds"],
                                args.get("forbid_self_approval", False))
    return approvals.decide(store, Actor(approver, "cli", roles), args["checkpoint"], ballot, rules)


def test_approval_counts_for_its_run_checkpoint_and_plan(store):
    run_id = awaiting(store)
    assert approvals.evaluate(store, run_id, "worker_launch", "fp1", DESTRUCTIVE).state == "missing"
    record = approve(store)
    assert record.run_id == run_id and record.plan_fingerprint == "fp1"
    assert approvals.evaluate(store, run_id, "worker_launch", "fp1", DESTRUCTIVE).state == "approved"
    changed = approvals.evaluate(store, run_id, "worker_launch", "fp2", DESTRUCTIVE)
    assert changed.state == "missing" and "earlier plan" in changed.why
    assert approvals.evaluate(store, "run-other", "worker_launch", "fp1", DESTRUCTIVE).state == "missing"


def test_expired_approval_does_not_count(store, clock):
    run_id = awaiting(store)
    approve(store, ttl_seconds=10)
    clock.advance(11)
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp1", DESTRUCTIVE)
    assert verdict.state == "missing" and "expired" in verdict.why


def test_destructive_gate_needs_acknowledged_risks(store):
    awaiting(store)
    with pytest.raises(Invalid):
        approve(store, acknowledge_risks=False)


def test_plain_gate_does_not_need_acknowledgement(store):
    run_id = awaiting(store, destructive=False)
    approve(store, acknowledge_risks=False)
    assert approvals.evaluate(store, run_id, "worker_launch", "fp1", PLAIN).state == "approved"


def test_named_fingerprint_must_be_the_awaiting_plan(store):
    awaiting(store, fingerprint="fp2")
    with pytest.raises(PlanChanged):
        approve(store, fingerprint="fp1")


def test_decision_is_given_once(store):
    awaiting(store)
    approve(store)
    with pytest.raises(AlreadyDecided):
        approve(store)


def test_rejection_wins_and_says_who(store):
    run_id = awaiting(store)
    approve(store, decision="reject", approver="carol", reason="not today")
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp1", DESTRUCTIVE)
    assert verdict.state == "rejected" and verdict.record.approver == "carol"
    assert verdict.record.reason == "not today"


def test_revoked_approval_stops_counting(store):
    run_id = awaiting(store)
    record = approve(store)
    approvals.revoke(store, Actor("dave", "cli", frozenset({"approver"})), record.id)
    assert approvals.evaluate(store, run_id, "worker_launch", "fp1", DESTRUCTIVE).state == "missing"
    assert len(store.approvals.decisions("worker_launch")) == 2  # append-only


def test_self_approval_of_destructive_gate_can_be_forbidden(store):
    awaiting(store, requester="alice")
    with pytest.raises(SelfApprovalForbidden):
        approve(store, approver="alice", forbid_self_approval=True)
    approve(store, approver="bob", forbid_self_approval=True)


def test_nothing_awaiting(store):
    with pytest.raises(NoPendingApproval):
        approve(store)


# -- multi-party approvals (approvals.policy) ---------------------------------------------------
TWO = ApprovalPolicy(min_approvals=2, distinct=True, exclude_requester=True)
TWO_GATE = Gate(required=True, destructive=True, policy=TWO)


def test_two_distinct_approvals_are_needed_and_the_progress_is_shown(store):
    run_id = awaiting(store)
    approve(store, "bob", policy=TWO)
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp1", TWO_GATE)
    assert verdict.state == "missing" and verdict.progress == "1 of 2 approvals (bob)"
    with pytest.raises(AlreadyDecided, match="another approver"):  # the same one again
        approve(store, "bob", policy=TWO)
    approve(store, "carol", policy=TWO)
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp1", TWO_GATE)
    assert verdict.state == "approved"
    assert [r.approver for r in verdict.approvals] == ["bob", "carol"]


def test_the_requester_cannot_be_one_of_them(store):
    awaiting(store, requester="alice")
    with pytest.raises(SelfApprovalForbidden):
        approve(store, "alice", policy=TWO)


def test_one_rejection_ends_a_multi_party_gate(store):
    run_id = awaiting(store)
    approve(store, "bob", policy=TWO)
    approve(store, "carol", decision="reject", reason="not tonight", policy=TWO)
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp1", TWO_GATE)
    assert verdict.state == "rejected" and verdict.record.approver == "carol"
    assert store.runs.get_run(run_id).status == "rejected"


def test_approvals_of_another_plan_do_not_add_up(store):
    run_id = awaiting(store, fingerprint="fp1")
    approve(store, "bob", policy=TWO)
    store.approvals.close_approval_requests(run_id)
    store.approvals.open_approval_request(run_id, "worker_launch", "fp2", {"actions": []}, True, ["x"],
                                "alice")
    approve(store, "carol", policy=TWO)
    verdict = approvals.evaluate(store, run_id, "worker_launch", "fp2", TWO_GATE)
    assert verdict.state == "missing" and [r.approver for r in verdict.approvals] == ["carol"]


def test_the_policy_roles_are_required_of_every_approver(store):
    from core.errors import Forbidden
    awaiting(store)
    policy = ApprovalPolicy(roles=("approver", "operator"))
    with pytest.raises(Forbidden):
        approve(store, "bob", policy=policy)  # an approver, not an operator
    approve(store, "bob", roles=frozenset({"approver", "operator"}), policy=policy)


def test_what_a_gate_still_requires_follows_the_rules_decide_enforces(store):
    policy = ApprovalPolicy(min_approvals=2, distinct=True, exclude_requester=True)
    awaiting(store, requester="alice")
    request = store.approvals.open_request_for("worker_launch")
    required = approvals.still_required(request, approvals.verdict_for(store, request, policy),
                                        policy)
    assert required == ["a decision on plan fp1 (2 approvals)",
                        "acknowledge_risks: true (destructive gate)",
                        "not from the requester (alice)"]
    approve(store, "bob", policy=policy)
    verdict = approvals.verdict_for(store, request, policy)
    assert approvals.still_required(request, verdict, policy)[0] == \
        "1 more approval of plan fp1 (1 of 2 approvals (bob)) from other principals"
    approve(store, "carol", policy=policy)
    assert approvals.still_required(request, approvals.verdict_for(store, request, policy),
                                    policy) == []

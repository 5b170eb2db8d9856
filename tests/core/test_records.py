"""The typed records' own behaviour: a run's results and what remains of it, a policy as data."""
import pytest

from core.facts import Outcome, RunStatus
from core.records import ApprovalPolicy, CheckpointResult, Run


def run_with(*outcomes: tuple[str, Outcome]) -> Run:
    return Run(id="run-1", mode="deploy", status=RunStatus.FAILED, requester="alice",
               source="cli", selection=tuple(n for n, _ in outcomes), options={},
               created_at=1.0, updated_at=2.0,
               checkpoints=tuple(CheckpointResult("run-1", n, o) for n, o in outcomes))


def test_what_remains_of_a_run_is_every_checkpoint_not_done_in_order():
    run = run_with(("a", Outcome.SUCCEEDED), ("b", Outcome.SKIPPED), ("c", Outcome.FAILED),
                   ("d", Outcome.PENDING), ("e", Outcome.AWAITING_APPROVAL))
    assert run.remaining == ["c", "d", "e"]
    assert run_with(("a", Outcome.SUCCEEDED)).remaining == []


def test_a_run_gives_the_result_of_one_of_its_checkpoints():
    run = run_with(("a", Outcome.SUCCEEDED), ("b", Outcome.FAILED))
    assert run.result("b").status == Outcome.FAILED
    with pytest.raises(StopIteration):
        run.result("not-in-the-run")


def test_a_policy_as_data_lists_its_roles():
    policy = ApprovalPolicy(min_approvals=2, exclude_requester=True, roles=("approver", "admin"))
    assert policy.to_dict() == {"min_approvals": 2, "distinct": True, "exclude_requester": True,
                                "roles": ["approver", "admin"]}
    assert ApprovalPolicy().to_dict()["roles"] == ["approver"]

"""The statuses every layer shares: which outcomes let a run go on, how the CLI says them, and
what a run ends as when a checkpoint stops it."""
from core.facts import FINISHED, RESUMABLE, RUN_STATUS_FOR, Outcome, RunStatus


def test_only_a_reached_goal_lets_a_run_go_on():
    assert {o for o in Outcome if o.done} == {Outcome.SUCCEEDED, Outcome.SKIPPED}


def test_the_cli_says_an_outcome_in_words():
    assert Outcome.SUCCEEDED.label == "done"
    assert Outcome.SKIPPED.label == "skipped (satisfied)"
    assert Outcome.AWAITING_APPROVAL.label == "awaiting approval"
    assert Outcome.FAILED.label == "failed" and Outcome.PENDING.label == "pending"


def test_every_outcome_that_stops_a_run_ends_it_in_a_status_it_can_be_left_in():
    stopping = {o for o in Outcome if not o.done} - {Outcome.PENDING, Outcome.RUNNING}
    assert set(RUN_STATUS_FOR) == stopping
    for outcome, status in RUN_STATUS_FOR.items():
        assert status in FINISHED | RESUMABLE, outcome
        assert status.value == outcome.value  # the one vocabulary


def test_a_rejected_cancelled_or_succeeded_run_is_final_and_never_resumed():
    assert not RESUMABLE & {RunStatus.REJECTED, RunStatus.CANCELLED, RunStatus.SUCCEEDED}
    assert RunStatus.RUNNING not in FINISHED | RESUMABLE
    assert RunStatus.AWAITING_APPROVAL in RESUMABLE and RunStatus.AWAITING_APPROVAL not in FINISHED

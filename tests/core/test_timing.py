"""poll_until: one way to wait, with a fake clock (no real sleeping)."""
import pytest

from core.timing import TimedOut, poll_until
from tests.fakes import FakeClock


def test_returns_the_first_truthy_value_and_reports_progress():
    clock, seen, answers = FakeClock(), [], iter([None, 0, "ready"])
    assert poll_until(lambda: next(answers), 10, "x", on_wait=seen.append, clock=clock,
                      interval=2) == "ready"
    assert seen == ["waiting for x (0s)", "waiting for x (2s)"] and clock.slept == 4


def test_times_out_at_the_deadline_without_sleeping_past_it():
    clock = FakeClock()
    with pytest.raises(TimedOut, match="timed out after 5s waiting for the head"):
        poll_until(lambda: False, 5, "the head", clock=clock, interval=2)
    assert clock.slept == 5  # 2 + 2 + the 1 s left, never beyond


def test_listed_errors_count_as_not_yet_and_others_end_the_wait():
    clock, calls = FakeClock(), []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not up yet")
        return True
    assert poll_until(flaky, 10, "x", clock=clock, retry_on=(ConnectionError,))
    with pytest.raises(KeyError):
        poll_until(lambda: {}["boom"], 10, "x", clock=clock, retry_on=(ConnectionError,))


def test_on_wait_may_cancel():
    class Cancelled(Exception):
        pass

    def cancel(_message):
        raise Cancelled()
    with pytest.raises(Cancelled):
        poll_until(lambda: False, 10, "x", on_wait=cancel, clock=FakeClock())

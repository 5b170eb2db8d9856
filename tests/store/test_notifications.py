"""Notification deliveries: one row per (event, target), its attempts recorded; whether an
earlier delivery of the same run to the same target is still pending (they go in order)."""
import pytest

from store import Store
from tests.fakes import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def deliveries(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock).deliveries


def test_a_delivery_starts_pending_and_records_each_attempt(deliveries, clock):
    made = deliveries.add_delivery("approval.required", "ops", {"text": "approve?"},
                                   run_id="run-1", checkpoint="worker_launch")
    assert (made.status, made.attempts, made.last_error, made.payload) == \
        ("pending", 0, None, {"text": "approve?"})
    assert made.created_at == made.updated_at == clock.now
    clock.advance(5)
    deliveries.update_delivery(made.id, status="pending", attempts=1, last_error="HTTP 503")
    again = deliveries.get_delivery(made.id)
    assert (again.attempts, again.last_error, again.updated_at) == (1, "HTTP 503", clock.now)
    assert again.created_at == made.created_at and again.run_id == "run-1"
    assert deliveries.get_delivery("dlv-missing") is None


def test_a_delivery_waits_for_an_earlier_pending_one_of_its_run_to_its_target(deliveries, clock):
    first = deliveries.add_delivery("run.started", "ops", {}, run_id="run-1")
    clock.advance(1)
    second = deliveries.add_delivery("run.finished", "ops", {}, run_id="run-1")
    assert deliveries.earlier_pending(second) and not deliveries.earlier_pending(first)
    deliveries.update_delivery(first.id, status="delivered", attempts=1)
    assert not deliveries.earlier_pending(second)


def test_a_failed_delivery_holds_up_nothing(deliveries, clock):
    first = deliveries.add_delivery("run.started", "ops", {}, run_id="run-1")
    clock.advance(1)
    second = deliveries.add_delivery("run.finished", "ops", {}, run_id="run-1")
    deliveries.update_delivery(first.id, status="failed", attempts=5, last_error="gave up")
    assert not deliveries.earlier_pending(second)


def test_another_target_or_another_run_does_not_hold_a_delivery_up(deliveries, clock):
    deliveries.add_delivery("run.started", "pager", {}, run_id="run-1")
    deliveries.add_delivery("run.started", "ops", {}, run_id="run-2")
    clock.advance(1)
    later = deliveries.add_delivery("run.finished", "ops", {}, run_id="run-1")
    assert not deliveries.earlier_pending(later)


def test_deliveries_made_in_the_same_instant_go_in_the_order_they_were_made(deliveries):
    first = deliveries.add_delivery("a", "ops", {}, run_id="run-1")
    second = deliveries.add_delivery("b", "ops", {}, run_id="run-1")
    assert deliveries.earlier_pending(second) and not deliveries.earlier_pending(first)


def test_recent_deliveries_are_newest_first_filtered_and_limited(deliveries, clock):
    for n, event in enumerate(("run.started", "approval.required", "run.finished")):
        clock.advance(1)
        made = deliveries.add_delivery(event, "ops", {"n": n})
        if event == "run.started":
            deliveries.update_delivery(made.id, status="delivered", attempts=1)
    assert [d.event for d in deliveries.recent()] == \
        ["run.finished", "approval.required", "run.started"]
    assert [d.event for d in deliveries.recent(limit=1)] == ["run.finished"]
    assert [d.event for d in deliveries.recent(status="pending")] == \
        ["run.finished", "approval.required"]
    assert [d.payload for d in deliveries.recent(status="pending", event="approval.required")] == \
        [{"n": 1}]


def test_deliveries_are_counted_by_event_and_status(deliveries):
    for target in ("ops", "pager"):
        deliveries.add_delivery("run.finished", target, {})
    done = deliveries.add_delivery("run.started", "ops", {})
    deliveries.update_delivery(done.id, status="delivered", attempts=1)
    assert sorted(deliveries.delivery_counts()) == [("run.finished", "pending", 2),
                                                    ("run.started", "delivered", 1)]

"""The orchestrator's loop and rules, with small scripted checkpoints (no cluster needed)."""
import pytest

from checkpoints import approvals
from checkpoints.access import Actor
from checkpoints.factory import make_context
from checkpoints.orchestrator import Orchestrator
from cluster.config import parse_config
from cluster.platforms.base import PlatformError
from store import LeaseHeld
from tests.fakes import FakeClock, Scripted, run


def decide(ctx, approver, decision="approve", source="cli", claimed=None, **kw):
    request = ctx.store.approvals.open_request_for("b")  # what the decider is shown
    return approvals.decide(ctx.store, Actor(approver, source, claimed_name=claimed), "b",
                            approvals.Ballot(decision, request.run_id, request.fingerprint, **kw),
                            approvals.GateRules(ttl_seconds=60))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def ctx(tmp_path, clock):
    return make_context(parse_config({"state_dir": str(tmp_path)}, environ={}), clock=clock)


def test_runs_in_order_and_skips_what_is_done(ctx):
    state = {"b": True}
    steps = [Scripted("a", state), Scripted("b", state), Scripted("c", state)]
    result = run(ctx, steps)
    assert result.status == "succeeded"
    assert [r.status for r in result.checkpoints] == ["succeeded", "skipped", "succeeded"]
    again = run(ctx, steps)
    assert [r.status for r in again.checkpoints] == ["skipped"] * 3
    assert [s.applied for s in steps] == [1, 0, 1]


def test_failure_is_recorded_and_resume_continues_from_it(ctx):
    state = {}
    broken = Scripted("b", state, fail_apply=True)
    steps = [Scripted("a", state), broken, Scripted("c", state)]
    result = run(ctx, steps)
    assert result.status == "failed" and result.failed_checkpoint == "b"
    assert "b broke" in result.error
    broken.fail_apply = False
    resumed = run(ctx, steps, run_record=result)
    assert resumed.status == "succeeded" and resumed.id == result.id
    assert steps[0].applied == 1  # not redone


def test_destructive_gate_waits_then_resumes_with_approval(ctx):
    state = {}
    steps = [Scripted("a", state), Scripted("b", state, kind="delete")]
    result = run(ctx, steps)
    assert result.status == "awaiting_approval" and result.failed_checkpoint == "b"
    assert steps[1].applied == 0
    request = ctx.store.approvals.open_request_for("b")
    assert request.destructive and request.run_id == result.id
    decide(ctx, "bob", source="cli", acknowledge_risks=True)
    resumed = run(ctx, steps, run_record=result)
    assert resumed.status == "succeeded" and steps[1].applied == 1


def test_changed_plan_is_not_covered_by_the_earlier_approval(ctx):
    state = {"n": 1}
    steps = [Scripted("b", state, kind="delete")]
    first = run(ctx, steps)
    decide(ctx, "bob", source="cli", acknowledge_risks=True)
    state["n"] = 2  # the live system changed: a different plan
    again = run(ctx, steps, run_record=first)
    assert again.status == "awaiting_approval" and steps[0].applied == 0
    events = ctx.store.events.read(run_id=first.id, kind_prefix="approval.required")
    assert "earlier plan" in events[-1].data["why_not"]


def test_an_expired_approval_is_not_applied(ctx, clock):
    steps = [Scripted("b", {}, kind="delete")]
    first = run(ctx, steps)
    decide(ctx, "bob", source="cli", acknowledge_risks=True)
    clock.advance(61)
    again = run(ctx, steps, run_record=first)
    assert again.status == "awaiting_approval" and steps[0].applied == 0
    events = ctx.store.events.read(run_id=first.id, kind_prefix="approval.required")
    assert "expired" in events[-1].data["why_not"]


def test_waiting_for_a_decision_fails_closed_on_the_fake_clock(ctx, clock):
    from checkpoints.orchestrator import wait_for_decision
    steps = [Scripted("b", {}, kind="delete")]

    def wait(req):
        verdict = wait_for_decision(req.ctx, "b", req.plan, req.gate, timeout=3600)
        return "timeout" if verdict is None else verdict.state
    result = run(ctx, steps, gatekeeper=wait)
    assert result.status == "failed" and "failing closed" in result.error
    assert clock.slept >= 3600  # an hour of waiting, in no time


def test_approvers_are_warned_once_before_a_wait_fails_closed(tmp_path, clock):
    """approval.expiring goes out once, notifications.expiring_lead_seconds before the
    wait's end, through the context's notifier (an hour of waiting, in no time)."""
    from checkpoints.notifications import Dispatcher, Notifier
    from checkpoints.orchestrator import wait_for_decision
    config = parse_config({"state_dir": str(tmp_path), "notifications": {
        "expiring_lead_seconds": 300, "targets": [
            {"name": "ops", "type": "slack", "url_env": "RD_NOWHERE"}]}}, environ={})
    ctx = make_context(config, clock=clock)
    sent = []
    ctx.notifier = Notifier(config, ctx.store, Dispatcher(
        clock, send=lambda target, payload, delivery_id, session: sent.append(payload)))

    def wait(req):
        start = clock.monotonic()
        verdict = wait_for_decision(req.ctx, "b", req.plan, req.gate, timeout=3600)
        assert clock.monotonic() - start >= 3600
        return "timeout" if verdict is None else verdict.state
    result = run(ctx, [Scripted("b", {}, kind="delete")], gatekeeper=wait)
    assert result.status == "failed"
    assert ctx.notifier.flush(5)
    expiring = [p for p in sent if p["event"] == "approval.expiring"]
    assert len(expiring) == 1 and expiring[0]["checkpoint"] == "b"
    assert 0 < expiring[0]["seconds_left"] <= 300
    assert [p["event"] for p in sent] == ["approval.required", "approval.expiring", "run.failed"]


def test_rejection_ends_the_run_with_who_and_why(ctx):
    state = {}
    steps = [Scripted("b", state, kind="replace")]

    def reject(req):
        decide(ctx, "carol", "reject", reason="too risky", claimed="Carol C.")
        return "rejected"
    result = run(ctx, steps, gatekeeper=reject)
    assert result.status == "rejected"
    # one writer of a rejection: the name the rejecter claimed stays in it
    assert result.error == "b rejected by carol (Carol C.): too risky"
    assert steps[0].applied == 0


def test_gatekeeper_approval_is_recorded_and_applied(ctx):
    state = {}
    steps = [Scripted("b", state, kind="delete")]

    def auto(req):
        decide(ctx, "robot", source="auto", acknowledge_risks=True)
        return "approved"
    result = run(ctx, steps, gatekeeper=auto)
    assert result.status == "succeeded"
    assert ctx.store.approvals.decisions("b")[0].source == "auto"


def test_timeout_fails_closed(ctx):
    steps = [Scripted("b", {}, kind="delete")]
    result = run(ctx, steps, gatekeeper=lambda req: "timeout")
    assert result.status == "failed" and "failing closed" in result.error
    assert steps[0].applied == 0


def test_one_run_at_a_time(ctx):
    first = Orchestrator(ctx, lambda r: "pending")
    first.acquire()
    try:
        with pytest.raises(LeaseHeld):
            Orchestrator(ctx, lambda r: "pending").acquire()
    finally:
        first.release()


def test_a_crashed_runs_status_becomes_interrupted(ctx):
    stale = ctx.store.runs.create_run("deploy", ["a"], "alice", "cli")  # 'running', no live holder
    orch = Orchestrator(ctx, lambda r: "pending")
    orch.acquire()
    orch.release()
    assert ctx.store.runs.get_run(stale.id).status == "interrupted"


def test_unexpected_errors_are_recorded_not_raised(ctx):
    class Buggy(Scripted):
        def plan(self, ctx):
            raise ZeroDivisionError("oops")
    result = run(ctx, [Buggy("a", {})])
    assert result.status == "failed" and "ZeroDivisionError" in result.error
    assert ctx.store.events.read(kind_prefix="checkpoint.crash")


def test_a_cancel_in_the_moment_a_failed_run_is_being_finished_stands(ctx, monkeypatch):
    """The API cancels a run while its executor records the failure it just met (seen under
    fuzzing: the executor's thread died on 'cannot go from cancelled to failed')."""
    from checkpoints import orchestrator, runs
    from tests.fakes import ALICE

    def cancel_first(store, run_id, to, **fields):
        runs.cancel(store, run_id, ALICE, "at the same moment")
        return runs.transition(store, run_id, to, **fields)
    monkeypatch.setattr(orchestrator, "transition", cancel_first)
    result = run(ctx, [Scripted("a", {}, fail_apply=True)])
    assert result.status == "cancelled" and "at the same moment" in result.error


def test_later_checkpoints_start_ahead_after_each_one_that_passes(ctx):
    """Checkpoint.ahead: called for every later checkpoint of the run once one passed
    (skipped counts), never for one that already ran, nor after a failure; its errors are
    not the run's."""
    calls = []

    class Ahead(Scripted):
        def ahead(self, ctx):
            calls.append(self.name)
            if self.name == "c":
                raise PlatformError("nothing to start yet")

    state = {"a": True}
    broken = Ahead("b", state, fail_apply=True)
    steps = [Ahead("a", state), broken, Ahead("c", state)]
    result = run(ctx, steps)
    assert result.status == "failed" and calls == ["b", "c"]  # after a; none after b failed
    broken.fail_apply, calls[:] = False, []
    assert run(ctx, steps, run_record=result).status == "succeeded"
    assert calls == ["c"]  # after b passed; none after the last

"""Approvals given as files (approvals.file_dir): counted only when safe, for the plan they
name, once; refusals are audited and the file is set aside."""
import os
import pwd

import pytest

from checkpoints.factory import make_context
from checkpoints.orchestrator import wait_for_decision
from cluster.config import parse_config
from tests.fakes import FakeClock, Scripted, run

ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def approvals_dir(tmp_path):
    path = tmp_path / "approvals"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def ctx(tmp_path, approvals_dir):
    config = parse_config({"state_dir": str(tmp_path / "state"),
                           "approvals": {"file_dir": str(approvals_dir)}}, environ={})
    return make_context(config, clock=FakeClock())


def write(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


def files(directory):
    return sorted(p.name for p in directory.iterdir())


def awaiting(ctx, kind="delete"):
    steps = [Scripted("b", {}, kind=kind)]
    first = run(ctx, steps)
    assert first.status == "awaiting_approval"
    return steps, first, ctx.store.approvals.open_request_for("b").fingerprint


def test_a_file_naming_the_plan_approves_it_once_as_the_os_user(ctx, approvals_dir):
    steps, first, fingerprint = awaiting(ctx)
    write(approvals_dir / "checkpoint-b-approved",
          f"{fingerprint} acknowledge-risks\nreason: nightly window\n")
    done = run(ctx, steps, run_record=first)
    assert done.status == "succeeded" and steps[0].applied == 1
    [record] = ctx.store.approvals.decisions("b")
    assert (record.approver, record.source, record.reason) == (ME, "file", "nightly window")
    assert files(approvals_dir) == [f"checkpoint-b-approved.used-{record.id}"]
    [event] = [e for e in ctx.store.audit_log.audit_events() if e.action == "approval.approve"]
    assert (event.source, event.principal, event.result) == ("file", ME, "ok")

    steps[0].state.clear()  # the same plan again, in a new run: the used file approves nothing
    again = run(ctx, steps)
    assert again.status == "awaiting_approval" and steps[0].applied == 1


def test_a_file_is_taken_while_the_run_waits(ctx, approvals_dir):
    def wait(req):
        write(approvals_dir / "checkpoint-b-approved", f"{req.plan.fingerprint} acknowledge-risks")
        verdict = wait_for_decision(req.ctx, "b", req.plan, req.gate, timeout=60)
        return "timeout" if verdict is None else verdict.state
    steps = [Scripted("b", {}, kind="delete")]
    assert run(ctx, steps, gatekeeper=wait).status == "succeeded"
    assert ctx.store.approvals.decisions("b")[0].source == "file"


@pytest.mark.parametrize("content, mode, why", [
    ("{other}", 0o600, "does not name the plan awaiting approval"),
    ("{fp} acknowledge-risks", 0o620, "writable by others"),
    ("{fp} acknowledge-risks", 0o602, "writable by others"),
    ("{fp}", 0o600, "destructive gate: approving it needs acknowledge_risks"),
])
def test_a_file_that_does_not_count_is_refused_audited_and_set_aside(ctx, approvals_dir,
                                                                      content, mode, why):
    steps, first, fingerprint = awaiting(ctx)
    write(approvals_dir / "checkpoint-b-approved",
          content.format(fp=fingerprint, other="0123456789abcdef"), mode)
    again = run(ctx, steps, run_record=first)
    assert again.status == "awaiting_approval" and steps[0].applied == 0
    assert ctx.store.approvals.decisions("b") == []
    [left] = files(approvals_dir)
    assert left.startswith("checkpoint-b-approved.refused-")
    refused = [e for e in ctx.store.audit_log.audit_events() if e.result == "refused"]
    assert len(refused) == 1 and refused[0].source == "file" and why in refused[0].detail["reason"]


def test_a_link_to_a_file_naming_the_plan_is_refused(ctx, approvals_dir, tmp_path):
    steps, first, fingerprint = awaiting(ctx)
    target = write(tmp_path / "elsewhere", f"{fingerprint} acknowledge-risks")
    (approvals_dir / "checkpoint-b-approved").symlink_to(target)
    assert run(ctx, steps, run_record=first).status == "awaiting_approval"
    assert ctx.store.approvals.decisions("b") == []
    assert "symbolic link" in next(ctx.store.audit_log.audit_events(action="approval.file")).detail["reason"]


def test_a_directory_others_can_write_is_not_read_at_all(ctx, approvals_dir):
    steps, first, fingerprint = awaiting(ctx)
    write(approvals_dir / "checkpoint-b-approved", f"{fingerprint} acknowledge-risks")
    approvals_dir.chmod(0o777)
    assert run(ctx, steps, run_record=first).status == "awaiting_approval"
    assert files(approvals_dir) == ["checkpoint-b-approved"]  # not touched
    refused = next(ctx.store.audit_log.audit_events(action="approval.file"))
    assert "approvals.file_dir" in refused.detail["reason"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_another_user_is_refused(ctx, approvals_dir):
    steps, first, fingerprint = awaiting(ctx)
    planted = write(approvals_dir / "checkpoint-b-approved", f"{fingerprint} acknowledge-risks")
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    assert run(ctx, steps, run_record=first).status == "awaiting_approval"
    assert ctx.store.approvals.decisions("b") == []
    refused = next(ctx.store.audit_log.audit_events(action="approval.file"))
    assert "is owned by uid" in refused.detail["reason"]

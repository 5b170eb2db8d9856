"""Trust boundary 2: a decision binds to the run and plan its decider was shown. Another
run's request at the same gate closes the first one, so "the plan awaiting approval now" may
be a plan nobody reviewed: the CLI, the API and the inbox name what they showed, and a
mismatch is refused (409 / exit 1) naming both."""
from __future__ import annotations

import sys

import pexpect

from store import Store
from tests.conftest import ROOT, clean_env, cli, write_config
from tests.security.conftest import APPROVER, awaiting, shown


def config_for(tmp_path):
    return write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                              "cluster_name": "binding"})


def test_the_cli_approves_the_plan_it_showed_not_the_one_that_replaced_it(tmp_path):
    config = config_for(tmp_path)
    store = Store(tmp_path / "state")
    first = awaiting(store, fingerprint="fp-shown", requester="olga")
    child = pexpect.spawn(sys.executable, ["deploy_master.py", "--config", str(config),
                                           "approve", "worker_launch", "--acknowledge-risks"],
                          cwd=str(ROOT), env=clean_env(), encoding="utf-8", timeout=60)
    try:
        child.expect(r"\[y/N\]: ")
        assert "fp-shown" in child.before  # what it asks about
        # meanwhile another run reaches the same gate (on another node): its request closes
        # the first one's
        second = awaiting(store, fingerprint="fp-other", requester="olga")
        child.sendline("y")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    output = child.before
    assert child.exitstatus == 1, output
    assert "fp-shown" in output and first in output and "fp-other" in output and second in output
    assert store.approvals.decisions() == []  # neither plan was approved
    assert [(e.result, e.run_id) for e in store.audit_log.audit_events(action="approval")] == [
        ("refused", first)]


def test_the_cli_without_a_terminal_decides_on_what_it_printed_or_what_it_was_given(tmp_path):
    config = config_for(tmp_path)
    store = Store(tmp_path / "state")
    first = awaiting(store, fingerprint="fp1", requester="olga")
    second = awaiting(store, fingerprint="fp1", requester="olga")  # the same plan, another run
    stale = cli("approve", "worker_launch", "--acknowledge-risks", "--run", first,
                "--fingerprint", "fp1", config=config)
    assert stale.returncode == 1 and first in stale.stderr and second in stale.stderr
    assert store.approvals.decisions() == []
    done = cli("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert done.returncode == 0, done.stderr
    assert f"run {second}" in done.stdout  # it printed the run it decided on
    assert [(a.run_id, a.plan_fingerprint) for a in store.approvals.decisions()] == [(second, "fp1")]


def test_an_api_decision_must_name_the_run_and_plan_it_reviewed(secured):
    _, client, store = secured
    awaiting(store, requester="olga")
    missing = client.post("/api/v1/approvals/worker_launch", json={"acknowledge_risks": True},
                          headers=APPROVER)
    assert missing.status_code == 422
    assert set(missing.get_json()["errors"]["json"]) == {"run_id", "plan_fingerprint"}
    assert store.approvals.decisions() == []


def test_an_api_decision_on_a_run_whose_request_was_replaced_is_a_409_naming_both(secured):
    _, client, store = secured
    first = awaiting(store, fingerprint="fp1", requester="olga")
    reviewed = shown(store)
    second = awaiting(store, fingerprint="fp2", requester="olga")
    for body in (reviewed, {**reviewed, "plan_fingerprint": "fp2"}):  # neither matches
        refused = client.post("/api/v1/approvals/worker_launch",
                              json={"acknowledge_risks": True, **body}, headers=APPROVER)
        assert refused.status_code == 409
        message = refused.get_json()["message"]
        assert first in message and second in message and "fp2" in message
    assert store.approvals.decisions() == []
    approved = client.post("/api/v1/approvals", headers=APPROVER, json={
        "checkpoint": "worker_launch", "acknowledge_risks": True, **shown(store)})
    assert approved.status_code == 201 and approved.get_json()["run_id"] == second

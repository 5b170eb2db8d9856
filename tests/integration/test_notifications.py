"""Notifications end to end, to real HTTP receivers on loopback: a CLI run that waits at a
gate tells the webhook (signed, retried, in order), an approval given from another process
continues it, a receiver that never answers does not hold a run up, and the API lists and
tests the deliveries. Secrets appear nowhere."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests

from store import Store
from tests.conftest import ApiServer, base_config, clean_env, cli, spawn_cli, wait_until, write_config
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-0123456789abcdef"


def verified(request: dict, secret: str = SECRET) -> bool:
    """What a receiver does (README: "Notifications")."""
    stamp, body = request["headers"]["X-Raydeploy-Timestamp"], request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return (hmac.compare_digest(expected, request["headers"]["X-Raydeploy-Signature"])
            and abs(time.time() - int(stamp)) < 300)


def gated_config(tmp_path, *targets, **notifications):
    return write_config(tmp_path / "c.yaml", base_config(
        tmp_path / "state", approvals={"required": ["project_setup"]},
        notifications={"targets": list(targets), **notifications}))


def webhook(receiver, name="ops", **extra):
    return {"name": name, "type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET",
            **extra}


def test_a_gated_run_is_announced_signed_retried_and_in_order(tmp_path):
    receiver = Receiver(fail_first=2)  # the first delivery needs 3 attempts
    config = gated_config(tmp_path, webhook(receiver), public_url="https://ray.example.com")
    env = clean_env(HOOK_SECRET=SECRET)
    run = spawn_cli("--checkpoint", "project_setup", config=config, env=env)
    try:
        wait_until(lambda: "approval.required" in receiver.events(), 30, "approval.required")
        required = json.loads(receiver.requests[0]["body"])
        assert required["checkpoint"] == "project_setup" and required["plan_fingerprint"]
        assert "approve project_setup" in required["approve_command"]
        assert required["inbox_url"] == "https://ray.example.com/ui/#/inbox"
        assert required["actions"][0]["action"].startswith("create project")
        assert run.poll() is None  # notified, and still waiting for a decision

        approved = cli("approve", "project_setup", "--reason", "looks right", config=config,
                       env=env)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0, output
        wait_until(lambda: "run.succeeded" in receiver.events(), 30, "run.succeeded")
    finally:
        if run.poll() is None:
            run.kill()
        receiver.stop()
    assert receiver.events() == ["approval.required", "approval.granted", "run.succeeded"]
    assert all(verified(r) for r in receiver.requests)
    tampered = {**receiver.requests[0], "body": receiver.requests[0]["body"] + b" "}
    assert not verified(tampered) and not verified(receiver.requests[0], secret="wrong")
    records = sorted(Store(tmp_path / "state").deliveries.recent(), key=lambda d: d.created_at)
    assert [(d.event, d.status) for d in records] == [
        ("approval.required", "delivered"), ("approval.granted", "delivered"),
        ("run.succeeded", "delivered")]
    assert records[0].attempts == 3 and records[0].last_error == "HTTP 500"
    everything = json.dumps([d.__dict__ for d in records]) + output + approved.stdout
    assert SECRET not in everything and receiver.url not in everything


def test_a_receiver_that_never_answers_does_not_hold_a_run_up(tmp_path):
    slow = Receiver(hold_seconds=60)
    config = gated_config(tmp_path, webhook(slow))
    try:
        started = time.monotonic()
        result = cli("--checkpoint", "project_setup", "--auto-approve", config=config,
                     env=clean_env(HOOK_SECRET=SECRET), timeout=120)
        took = time.monotonic() - started
    finally:
        slow.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 20, f"the run took {took:.0f}s with a receiver that never answers"
    records = Store(tmp_path / "state").deliveries.recent()
    assert records and all(d.status == "failed" for d in records)
    assert all("exited" in d.last_error for d in records)  # recorded, not left pending


def test_the_api_lists_deliveries_and_sends_a_test_event(tmp_path):
    hook, slack = Receiver(), Receiver()
    slack_url = tmp_path / "slack.url"
    slack_url.write_text(slack.url)
    config = gated_config(tmp_path, webhook(hook), {"name": "chat", "type": "slack",
                                                    "url_file": str(slack_url)})
    api = ApiServer(config, env=clean_env(HOOK_SECRET=SECRET))
    try:
        sent = requests.post(f"{api.url}/api/v1/notifications/test", json={}, timeout=30)
        assert sent.status_code == 200, sent.text
        body = sent.json()
        assert body["targets"] == ["ops", "chat"]
        assert sorted((d["target"], d["status"]) for d in body["deliveries"]) == [
            ("chat", "delivered"), ("ops", "delivered")]
        assert verified(hook.requests[0]) and hook.events() == ["test"]
        assert "text" in json.loads(slack.requests[0]["body"])
        listed = requests.get(f"{api.url}/api/v1/notifications", params={"event": "test"},
                              timeout=10).json()
        assert len(listed["deliveries"]) == 2
        assert requests.get(f"{api.url}/api/v1/notifications", params={"status": "nope"},
                            timeout=10).status_code == 422
        audit = requests.get(f"{api.url}/api/v1/audit", timeout=10).json()["events"]
        assert [e["action"] for e in audit] == ["notification.test"]
        assert SECRET not in sent.text + json.dumps(listed) + api.output()
        assert slack.url not in sent.text + json.dumps(listed) + api.output()
    finally:
        api.stop()
        hook.stop()
        slack.stop()


def test_approvers_are_told_before_a_gate_times_out_and_then_that_the_run_failed(tmp_path):
    receiver = Receiver()
    config = write_config(tmp_path / "c.yaml", base_config(
        tmp_path / "state", approvals={"required": ["project_setup"], "wait_timeout_seconds": 4},
        notifications={"targets": [webhook(receiver)], "expiring_lead_seconds": 3}))
    try:
        result = cli("--checkpoint", "project_setup", config=config,
                     env=clean_env(HOOK_SECRET=SECRET), timeout=60)
        assert result.returncode == 1 and "failing closed" in result.stdout + result.stderr
        wait_until(lambda: "run.failed" in receiver.events(), 20, "run.failed")
    finally:
        receiver.stop()
    assert receiver.events() == ["approval.required", "approval.expiring", "run.failed"]
    expiring = json.loads(receiver.requests[1]["body"])
    assert 0 < expiring["seconds_left"] <= 3 and expiring["approve_command"]

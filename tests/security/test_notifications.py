"""Notifications carry untrusted text (reasons, errors, names) to approvers: Slack messages
escape it, so it can neither link, mention nor format; webhooks never follow a redirect,
which would resend the signed body somewhere else."""
from __future__ import annotations

import json

from checkpoints import notifications
from checkpoints.notifications import slack_message
from cluster.config import parse_config
from tests.receiver import Receiver

EVIL = "<https://evil.example/approve|Approve now> <!channel> <@U024BE7LH> & *urgent*"


def test_slack_text_from_untrusted_fields_cannot_link_or_mention():
    for payload in (
            {"event": "approval.rejected", "checkpoint": "teardown", "cluster": "c1",
             "approver": "<!here>", "reason": EVIL},
            {"event": "run.failed", "cluster": "c1", "run_id": "run-1", "error": EVIL},
            {"event": "approval.required", "checkpoint": "teardown", "cluster": "c1",
             "risk": "destructive", "requester": "<!everyone>", "plan_fingerprint": "ab12",
             "approve_command": "python deploy_master.py approve teardown",
             "actions": [{"action": EVIL, "breaks": ["<b|c>"], "impact": [EVIL]}],
             "inbox_url": "https://ray.example.com/ui/#/inbox"}):
        message = slack_message(payload)
        for text in (message["text"], message["blocks"][0]["text"]["text"]):
            assert "<https://evil" not in text and "<!" not in text and "<@" not in text, text
            assert "&lt;https://evil.example/approve|Approve now&gt;" in text
            assert "&lt;!" in text and "&amp; *urgent*" in text
    # the inbox link is ours, built from the config: still a link
    assert "<https://ray.example.com/ui/#/inbox|Open the approval inbox>" in message["text"]


def test_untrusted_text_cannot_add_lines_to_a_slack_message():
    text = slack_message({"event": "approval.rejected", "checkpoint": "teardown",
                          "cluster": "c1", "approver": "mallory",
                          "reason": "fine\n*teardown approved by admin*\rok"})["text"]
    assert text.splitlines() == ["teardown on c1 rejected by mallory: fine "
                                 "*teardown approved by admin* ok"]


def test_a_webhook_redirect_is_a_failed_delivery_not_followed_nor_retried(tmp_path, monkeypatch):
    elsewhere = Receiver()  # where a 307 would resend the signed body
    redirector = Receiver(redirect_to=elsewhere.url)
    monkeypatch.setenv("HOOK_SECRET", "whsec-0123456789abcdef")
    config = parse_config({"state_dir": str(tmp_path / "s"), "notifications": {"targets": [
        {"name": "ops", "type": "webhook", "url": redirector.url, "secret_env": "HOOK_SECRET"}]}},
        environ={})
    from store import Store
    store = Store(config.state_dir)
    try:
        notifier = notifications.Notifier(config, store)
        sent = notifier.emit("test", message="hello")
        assert notifier.flush(30)
        delivery = store.deliveries.get_delivery(sent[0].id)
        assert (delivery.status, delivery.attempts) == ("failed", 1), delivery
        assert "307" in delivery.last_error and "redirect" in delivery.last_error
        assert redirector.attempts == 1 and elsewhere.attempts == 0
        assert json.loads(redirector.requests[0]["body"])["event"] == "test"
    finally:
        redirector.stop()
        elsewhere.stop()

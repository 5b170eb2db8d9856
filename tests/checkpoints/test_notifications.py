"""Notification messages and signatures (the delivery itself: tests/integration)."""
from __future__ import annotations

import hashlib
import hmac

from checkpoints.notifications import approval_facts, sign, slack_message
from checkpoints.plan import Action, Gate, Kind, Plan
from cluster.config import parse_config
from core.records import ApprovalPolicy


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body, stamp = b'{"event": "run.succeeded"}', "1700000000"
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"s3cret", stamp, body) == "sha256=" + expected
    assert sign(b"s3cret", "1700000001", body) != sign(b"s3cret", stamp, body)  # no replay


def test_an_approval_message_carries_what_an_approver_needs():
    config = parse_config({"notifications": {"public_url": "https://ray.example.com/"}},
                          environ={})
    plan = Plan("worker_launch", (Action(Kind.DELETE, "worker", "w-2", {"drain": True},
                                         impact={"notes": ["runs 2 replicas of hello"]}),))
    gate = Gate(required=True, destructive=True, reasons=("destructive: delete worker w-2",),
                policy=ApprovalPolicy(min_approvals=2))
    facts = approval_facts(config, "worker_launch", plan, gate, "alice", "req-1")
    assert facts["plan_fingerprint"] == plan.fingerprint and facts["destructive"]
    assert facts["approve_command"].endswith("approve worker_launch --acknowledge-risks")
    assert facts["inbox_url"] == "https://ray.example.com/ui/#/inbox"
    assert facts["actions"][0]["impact"] == ["runs 2 replicas of hello"]
    assert facts["min_approvals"] == 2
    text = slack_message({"event": "approval.required", "checkpoint": "worker_launch",
                          "cluster": "c1", **facts})["text"]
    lines = text.splitlines()
    assert "DESTRUCTIVE" in lines[0] and "worker_launch" in lines[0]
    assert any("delete worker w-2" in line for line in lines)
    assert facts["approve_command"] in text and "Open the approval inbox" in text

"""Plans that show what they break: breaking gates need their own acknowledgment (never
given by --auto-approve), a saved plan holds a run to its fingerprints, and the whole-run
preview predicts knock-on effects and shows the config's changes since the last success."""
from __future__ import annotations

import argparse
import json

import pytest

from checkpoints import BY_NAME, approvals
from checkpoints.access import Actor
from checkpoints.base import Checkpoint
from checkpoints.orchestrator import Orchestrator
from checkpoints.plan import Action, Kind, Plan
from checkpoints.preview import config_diff, effective_config, load_plan_file, preview
from cli.gate import CliGatekeeper
from core.errors import Invalid
from tests.fakes import world

ALICE = Actor("alice", "cli")
BREAKING = Action(Kind.DELETE, "worker", "w-2", {"drain": True, "breaks": ["sentiment"]},
                  impact={"shortfalls": ["sentiment needs 2 x 1 CPU, 0.8 CPU free on any "
                                         "remaining node"]})


class Fixed(Checkpoint):
    """A checkpoint whose plan is given; apply marks it applied."""

    def __init__(self, name, plan_actions):
        self.name, self.actions, self.applied = name, plan_actions, 0

    def plan(self, ctx):
        return Plan(self.name, () if self.applied else tuple(self.actions))

    def apply(self, ctx, plan):
        self.applied += 1


def run(ctx, steps, gatekeeper, options=None):
    orch = Orchestrator(ctx, gatekeeper, {s.name: s for s in steps})
    orch.acquire()
    try:
        return orch.execute(orch.create_run("deploy", [s.name for s in steps], ALICE, options))
    finally:
        orch.release()


def test_a_breaking_plan_needs_its_breaking_acknowledged(tmp_path):
    w = world(tmp_path)
    step = Fixed("b", [BREAKING])
    result = run(w.ctx, [step], lambda req: "pending")
    request = w.ctx.store.approvals.open_request_for("b")
    assert result.status == "awaiting_approval" and request.breaking and request.destructive
    shown = (request.run_id, request.fingerprint)
    with pytest.raises(Invalid) as info:
        approvals.decide(w.ctx.store, ALICE, "b", approvals.Ballot(
            "approve", *shown, acknowledge_risks=True))
    assert info.value.field == "acknowledge_breaking" and "sentiment" in str(info.value)
    approvals.decide(w.ctx.store, ALICE, "b", approvals.Ballot(
        "approve", *shown, acknowledge_risks=True, acknowledge_breaking=True))
    assert w.ctx.store.approvals.decisions("b")[0].acknowledge_breaking


def test_auto_approve_never_approves_a_breaking_plan_blind(tmp_path, capsys):
    w = world(tmp_path)
    args = argparse.Namespace(auto_approve=True, acknowledge_breaking=False, no_wait=False,
                              config=None, state_dir=None)
    result = run(w.ctx, [Fixed("b", [BREAKING])], CliGatekeeper(args, ALICE))
    out = capsys.readouterr().out
    assert result.status == "awaiting_approval" and w.ctx.store.approvals.decisions() == []
    assert "does not approve a plan that breaks apps" in out
    assert "sentiment needs 2 x 1 CPU" in out and "--acknowledge-breaking" in out
    args.acknowledge_breaking = True  # said out loud: approved, and recorded as such
    step = Fixed("c", [BREAKING])
    assert run(w.ctx, [step], CliGatekeeper(args, ALICE)).status == "succeeded"
    assert step.applied == 1


def test_a_saved_plan_holds_the_run_to_its_fingerprints(tmp_path):
    w = world(tmp_path)
    plan_file = tmp_path / "plan.json"
    saved = preview(w.ctx)
    plan_file.write_text(json.dumps(saved))
    expected = load_plan_file(str(plan_file))
    assert expected["worker_launch"] == BY_NAME["worker_launch"].plan(w.ctx).fingerprint
    step = Fixed("worker_launch", [Action(Kind.CREATE, "workers", None, {"count": 3})])
    result = run(w.ctx, [step], lambda req: "approved", {"expected_fingerprints": expected})
    assert result.status == "failed" and step.applied == 0
    assert "the plan changed since it was saved" in result.error
    with pytest.raises(Invalid):
        (tmp_path / "bad.json").write_text("[]")
        load_plan_file(str(tmp_path / "bad.json"))


def test_the_preview_predicts_what_a_new_head_does_to_workers_and_apps(tmp_path):
    w = world(tmp_path, head_cpu=2)  # the head must be replaced
    w.worker(1), w.worker(2)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app("api-app", "/api-app")
    steps = {s["checkpoint"]: s for s in preview(w.ctx)["checkpoints"]}
    head = steps["head_launch"]
    assert head["gate"]["breaking"] and head["plan"]["actions"][0]["details"]["breaks"] == ["api-app"]
    workers = steps["worker_launch"]  # live, nothing to do; after a new head, all start again
    assert [a["kind"] for a in workers["plan"]["actions"]] == ["create"]
    assert workers["plan"]["actions"][0]["details"]["count"] == 2 and workers["knock_on"]
    serve = steps["serve_deploy"]
    assert [(a["kind"], a["name"]) for a in serve["plan"]["actions"]] == [("create", "hello")]
    assert steps["validation"]["plan"]["actions"][0]["kind"] == "check"


def test_the_whole_preview_lists_the_platform_apps_once(tmp_path):
    w = world(tmp_path)
    for n in range(1, 4):
        w.worker(n)
    listings = []
    list_apps = w.platform.list_apps
    w.platform.list_apps = lambda: listings.append(1) or list_apps()
    steps = preview(w.ctx)["checkpoints"]
    assert not any(s["error"] for s in steps)
    assert len(listings) == 1  # every planner reads the same listing (CML: pages of 100 each)
    w.ctx.cluster.inventory.apps()
    assert len(listings) == 2  # outside a plan, every read asks the platform again


def test_config_changes_since_the_last_success_are_listed_without_secrets(tmp_path):
    from checkpoints.preview import remember_success
    w = world(tmp_path, cml={"api_key": "sekrit-key-0123456789"})
    remember_success(w.ctx, "run-1")
    w2 = world(tmp_path, workers={"count": 5}, cml={"api_key": "other-key-0123456789"})
    result = preview(w2.ctx)
    assert result["last_success"]["run_id"] == "run-1"
    assert {"key": "workers.count", "before": 2, "after": 5} in result["config_changes"]
    flat = effective_config(w2.ctx.config)
    assert flat["platform_settings.cml.api_key"] == "(set)"
    assert "sekrit" not in json.dumps(result) and "other-key" not in json.dumps(result)
    assert config_diff({"a": 1}, {"a": 1}) == []

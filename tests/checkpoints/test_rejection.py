"""A rejection is final for its run, and says so the same way from every path: the CLI
(--resume, --resume --run-id: exit 4), the API (a resume: 409), the domain (RunRejected)."""
from __future__ import annotations

import pytest
import yaml

from checkpoints import approvals
from checkpoints.access import Actor
from checkpoints.errors import RunRejected
from checkpoints.factory import make_context
from checkpoints.orchestrator import Orchestrator
from cluster.config import parse_config
from core.errors import Conflict
from tests.api_server.conftest import awaiting, make_app, shown
from tests.conftest import cli

CAROL = Actor("carol", "cli", claimed_name="Carol C.")


def rejected(store) -> str:
    run_id = awaiting(store)
    seen = shown(store)
    approvals.decide(store, CAROL, "worker_launch", approvals.Ballot(
        "reject", seen["run_id"], seen["plan_fingerprint"], reason="not tonight"))
    return run_id


def test_a_rejected_run_says_who_rejected_it_and_cannot_be_revoked_or_resumed(tmp_path):
    ctx = make_context(parse_config({"state_dir": str(tmp_path / "s")}, environ={}))
    run_id = rejected(ctx.store)
    run = ctx.store.runs.get_run(run_id)
    assert run.status == "rejected"
    assert run.error == "worker_launch rejected by carol (Carol C.): not tonight"
    record = ctx.store.approvals.decisions("worker_launch")[0]
    with pytest.raises(Conflict, match="final"):
        approvals.revoke(ctx.store, Actor("bob", "cli"), record.id)
    with pytest.raises(RunRejected, match="final"):
        Orchestrator(ctx, lambda req: "pending").resumable_run(run_id)


@pytest.mark.integration
def test_resuming_a_rejected_run_is_the_same_refusal_from_every_path(tmp_path):
    app = make_app(tmp_path)
    store = app.extensions["raydeploy"].store
    run_id = rejected(store)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "cluster_name": "apitest"}))
    latest, named = cli("--resume", config=config), cli("--resume", "--run-id", run_id, config=config)
    api = app.test_client().post("/api/v1/deployments", json={"resume": True, "run_id": run_id})
    assert (latest.returncode, named.returncode, api.status_code) == (4, 4, 409)
    for said in (latest.stderr, named.stderr, api.get_json()["message"]):
        assert f"run {run_id} was rejected" in said and "carol (Carol C.): not tonight" in said

"""Multi-party approval end to end: a CLI run waits at a gate whose policy needs two distinct
approvers; one approval through the API is not enough (the gate says 1 of 2 and who), the
same approver twice is refused, the second approver unblocks the run."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import ApiServer, base_config, cli, os_user, spawn_cli, write_config

pytestmark = pytest.mark.integration

# a policy of distinct approvers needs tokens (without them there is one identity); the CLI
# takes its roles from the tokens file: the OS user may run, alice and bob approve
TOKENS = ("tokens:\n"
          "  - {principal: alice, roles: [approver], token: alice-token-0123456789}\n"
          "  - {principal: bob, roles: [approver], token: bob-token-012345678901}\n"
          f"  - {{principal: {os_user()}, roles: [operator], token: runner-token-0123456789}}\n")


def post(api, token, **body):
    shown = gate(api)  # the run and plan the approver reviewed
    body = {"run_id": shown["run_id"], "plan_fingerprint": shown["plan_fingerprint"], **body}
    return requests.post(f"{api.url}/api/v1/approvals/project_setup", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})


def gate(api):
    return requests.get(f"{api.url}/api/v1/approvals/project_setup", timeout=10,
                        headers={"Authorization": "Bearer alice-token-0123456789"}).json()


def test_two_approvers_are_needed_and_the_gate_says_who_approved(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS)
    tokens.chmod(0o600)
    config = write_config(tmp_path / "c.yaml", base_config(
        tmp_path / "state", api={"tokens_file": str(tokens)},
        approvals={"required": ["project_setup"],
                   "policy": {"project_setup": {"min_approvals": 2}}}))
    api = ApiServer(config)
    run = spawn_cli("--checkpoint", "project_setup", config=config)
    try:
        deadline = time.monotonic() + 60
        while not gate(api)["awaiting"]:
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        assert post(api, "alice-token-0123456789", decision="approve").status_code == 201
        status = gate(api)
        assert status["min_approvals"] == 2 and not status["approved"]
        assert [a["approver"] for a in status["approvals"]] == ["alice"]
        assert any("1 more approval" in r and "1 of 2 approvals (alice)" in r
                   for r in status["required"])
        status_line = cli("--status", config=config).stdout
        assert "awaiting approval: project_setup" in status_line
        assert "(1 of 2 approvals (alice))" in status_line
        time.sleep(1)
        assert run.poll() is None  # one approval does not open the gate
        again = post(api, "alice-token-0123456789", decision="approve")
        assert again.status_code == 409 and "another approver" in again.json()["message"]
        assert post(api, "bob-token-012345678901", decision="approve").status_code == 201
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0, output
        assert "approved by alice, bob" in output
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        api.stop()

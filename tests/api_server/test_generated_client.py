"""A client generated from openapi/openapi.yaml by openapi-python-client (at test time, into
a temporary directory) drives a gated run end to end against a real API server: start a
run, read the pending gate, approve it as another principal, follow the run to success."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, ApiServer, base_config, clean_env, write_config

pytestmark = pytest.mark.integration

TOKENS = "olga:operator:operator-token-01234567,bob:approver:bob-token-012345678901"


@pytest.fixture
def raydeploy_client(tmp_path, monkeypatch):
    generator = Path(sys.executable).with_name("openapi-python-client")
    out = tmp_path / "gen" / "raydeploy_client"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run([str(generator), "generate", "--path", "openapi/openapi.yaml",
                             "--output-path", str(out), "--meta", "none"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    monkeypatch.syspath_prepend(str(out.parent))
    import raydeploy_client
    yield raydeploy_client
    for name in [m for m in sys.modules if m.split(".")[0] == "raydeploy_client"]:
        del sys.modules[name]


def test_a_generated_client_drives_a_gated_run_to_success(tmp_path, raydeploy_client):
    from raydeploy_client import AuthenticatedClient
    from raydeploy_client.api.approvals import decide_gate, get_gate
    from raydeploy_client.api.deployments import get_deployment, start_deployment
    from raydeploy_client.models import Decision, StartRun, StartRunCheckpointsItem

    config = write_config(tmp_path / "c.yaml", base_config(
        tmp_path / "state", approvals={"required": ["project_setup"]}))
    api = ApiServer(config, env=clean_env(RAYDEPLOY_API_TOKENS=TOKENS))
    try:
        operator = AuthenticatedClient(base_url=api.url, token="operator-token-01234567",
                                       raise_on_unexpected_status=True)
        approver = AuthenticatedClient(base_url=api.url, token="bob-token-012345678901",
                                       raise_on_unexpected_status=True)
        run = start_deployment.sync(client=operator, body=StartRun(
            checkpoints=[StartRunCheckpointsItem.PROJECT_SETUP]))
        assert run.status.value in ("running", "awaiting_approval")

        deadline = time.monotonic() + 30
        while not (gate := get_gate.sync("project_setup", client=operator)).awaiting:
            assert time.monotonic() < deadline, "the run never reached its gate"
            time.sleep(0.2)
        assert get_deployment.sync(run.id, client=operator).status.value == "awaiting_approval"
        assert not gate.approved and gate.min_approvals == 1

        record = decide_gate.sync("project_setup", client=approver, body=Decision(
            run_id=gate.run_id, plan_fingerprint=gate.plan_fingerprint, reason="reviewed"))
        assert record.approver == "bob" and record.plan_fingerprint == gate.plan_fingerprint

        while (now := get_deployment.sync(run.id, client=operator)).status.value != "succeeded":
            assert now.status.value in ("running", "awaiting_approval"), now.status
            assert time.monotonic() < deadline + 30, "the run did not finish"
            time.sleep(0.2)
        assert [c.status.value for c in now.checkpoints] == ["succeeded"]
    finally:
        api.stop()

"""Side door 3: a listener that is not loopback-only needs tokens, everywhere (dev server,
gunicorn, the Serve-hosted replica), and the replica gets the tokens as digests only."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from cluster.config import parse_config
from tests.conftest import ROOT, clean_env, os_user, write_config

NOT_LOCAL = "192.0.2.10"  # TEST-NET-1: never an address of this machine, never contacted


def safe_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                              "cluster_name": "listen"})


def test_gunicorn_refuses_a_non_loopback_bind_without_tokens(tmp_path):
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    result = subprocess.run(
        [gunicorn, "-c", "api_server/gunicorn.conf.py", "api_server.wsgi:app"], cwd=ROOT,
        env=clean_env(RAYDEPLOY_API_HOST=NOT_LOCAL, RAYDEPLOY_API_PORT="18080",
                      RAYDEPLOY_CONFIG=str(safe_config(tmp_path))),
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"refusing to listen on {NOT_LOCAL} without API tokens" in result.stderr


def test_the_dev_server_refuses_a_non_loopback_host_without_tokens(tmp_path):
    result = subprocess.run([sys.executable, "-m", "api_server", "--host", NOT_LOCAL,
                             "--config", str(safe_config(tmp_path))], cwd=ROOT,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "without API tokens" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_serve_replica_refuses_a_non_loopback_proxy_without_tokens(tmp_path):
    from api_server import ApiSetupError
    from api_server.serve_app import asgi_app
    args = {"config": str(safe_config(tmp_path)), "state_dir": str(tmp_path / "state"),
            "base_dir": str(tmp_path), "listen_host": NOT_LOCAL, "principals": []}
    with pytest.raises(ApiSetupError, match="without API tokens"):
        asgi_app(args)


def test_serve_deploy_will_not_plan_an_open_management_api_on_a_non_loopback_proxy(tmp_path):
    from checkpoints.errors import CheckpointFailed
    from checkpoints.steps.serve_deploy import ServeDeploy
    config = parse_config({"state_dir": str(tmp_path / "s")}, environ={})
    # the proxy of a CML head listens on the pod address; that cannot run here, so the
    # address is all this needs of the cluster
    serve = SimpleNamespace(proxy_host=lambda: "10.1.2.3", desired_apps=lambda p: [])
    ctx = SimpleNamespace(config=config, cluster=SimpleNamespace(serve=serve), control_plane_url=None)
    with pytest.raises(CheckpointFailed, match="without API tokens"):
        ServeDeploy.desired_apps(ctx)


# -- a port the platform publishes (CML's CDSW_APP_PORT: the app's public URL) -----------------
CML_APP = {"CDSW_APP_PORT": "8090", "CDSW_DOMAIN": "ml.example.com",
           "RAYDEPLOY_API_HOST": "127.0.0.1"}  # as CML and the control app set them
TOKEN = "ci:operator:ci-token-0123456789abcdef"


def loopback_app(tmp_path, environ: dict):
    """The API as the control app makes it: listening on 127.0.0.1:$CDSW_APP_PORT."""
    from api_server import create_app
    from api_server.settings import Settings
    settings = Settings.from_env(environ)
    config = parse_config({"state_dir": str(tmp_path / "state"), "cluster_name": "listen"},
                          environ={})
    return create_app(settings, config, listen_host=settings.host)


def test_a_loopback_listener_on_the_port_cml_publishes_is_refused_without_tokens(tmp_path):
    from api_server import ApiSetupError
    with pytest.raises(ApiSetupError) as refused:
        loopback_app(tmp_path, dict(CML_APP))
    message = str(refused.value)
    assert "refusing to serve on 127.0.0.1 without API tokens" in message
    assert "the platform publishes this port" in message and "CDSW_APP_PORT" in message


def test_a_loopback_listener_on_the_port_cml_publishes_starts_with_tokens(tmp_path):
    app = loopback_app(tmp_path, {**CML_APP, "RAYDEPLOY_API_TOKENS": TOKEN})
    assert app.test_client().get("/api/v1/cluster/status").status_code == 401


def test_a_loopback_listener_outside_a_cml_workload_needs_no_tokens(tmp_path):
    # CDSW_APP_PORT alone (no CDSW_DOMAIN: not inside CML) publishes nothing
    environ = {k: v for k, v in CML_APP.items() if k != "CDSW_DOMAIN"}
    assert loopback_app(tmp_path, environ).test_client().get("/health").status_code == 200


@pytest.mark.integration
def test_the_serve_hosted_api_requires_the_configured_tokens(tmp_path):
    from tests.live_cluster import deploy_cluster, tear_down
    tokens = tmp_path / "tokens.yaml"
    # the CLI is the OS user: with principals configured, it needs one of its own
    tokens.write_text("tokens:\n"
                      "  - {principal: vera, roles: [viewer], token: vera-secret-token-0123456789}\n"
                      f"  - {{principal: {os_user()}, roles: [admin], token: {'x' * 32}}}\n")
    tokens.chmod(0o600)
    try:
        cluster = deploy_cluster(tmp_path, name="rdtokens", workers=0,
                                 serve={"applications": []}, api={"tokens_file": str(tokens)})
        proxy = cluster.manager().serve.proxy_url
        assert requests.get(f"{proxy}/health", timeout=10).status_code == 200
        assert requests.get(f"{proxy}/api/v1/cluster/status", timeout=10).status_code == 401
        ok = requests.get(f"{proxy}/api/v1/cluster/status", timeout=10,
                          headers={"Authorization": "Bearer vera-secret-token-0123456789"})
        assert ok.status_code == 200, ok.text
        detail = requests.get(f"{proxy}/api/v1/applications/management-api", timeout=10,
                              headers={"Authorization": "Bearer vera-secret-token-0123456789"})
        deployed = str(detail.json()["deployed_config"])
        assert "vera-secret-token" not in deployed and "scrypt$" not in deployed
        assert "RAYDEPLOY_API_TOKENS" not in deployed
        # the replica's args (digests, the config and state paths) are in no answer either
        args = detail.json()["deployed_config"]["args"]
        assert args["principals"] == "(redacted)"
        assert all(value == "(redacted)" for key, value in args.items() if "digest" in key)
        assert not re.search(r"[0-9a-f]{32}", deployed), deployed
        assert str(tmp_path / "state") not in deployed
    finally:
        tear_down(tmp_path)

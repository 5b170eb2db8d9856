"""RAY_ADDRESS reaches the shared real cluster from a config that does not know it (another
state dir: no head app of its own), through the API and ``python -m validation``; and it
takes precedence over the head the config's platform lists."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from cluster.ray_address import RayAddress, resolve_dashboard
from tests.conftest import ROOT, ApiServer, clean_env, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def stranger(cluster, tmp_path):
    """A config like the cluster's, with a state dir of its own, and what reaches the cluster:
    its GCS address, dashboard URL and Ray token (the token travels as RAY_AUTH_TOKEN)."""
    inventory = cluster.manager().inventory
    path = write_config(tmp_path / "stranger.yaml",
                        {**cluster.config, "state_dir": str(tmp_path / "state")})
    token = (cluster.state_dir / "ray_token").read_text().strip()
    return path, inventory.head_address(), inventory.dashboard_url(), token


def validation(config, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "validation", "--config", str(config)],
                          cwd=ROOT, env=clean_env(**env), capture_output=True, text=True,
                          timeout=180)


def test_validation_reaches_the_cluster_at_ray_address(stranger):
    config, gcs, dashboard, token = stranger
    assert gcs.startswith("127.") and dashboard.startswith("http://127.")
    alone = validation(config)
    assert alone.returncode == 1 and "no running head app" in alone.stdout, alone.stdout
    for address in (gcs, dashboard):
        result = validation(config, RAY_ADDRESS=address, RAY_AUTH_TOKEN=token)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"RAY_ADDRESS {address}: dashboard {dashboard} healthy" in result.stdout
        assert "3 of 3 nodes ALIVE" in result.stdout and "PASS  http:hello" in result.stdout
        assert token not in result.stdout + result.stderr


def test_a_ray_client_address_resolves_to_the_clusters_dashboard(cluster, stranger):
    _, gcs, dashboard, token = stranger
    layout = cluster.manager().layout.current()
    client = RayAddress.parse(f"ray://{gcs.rsplit(':', 1)[0]}:{layout.client_port}")
    assert resolve_dashboard(client, token) == dashboard


def test_ray_address_takes_precedence_over_the_platforms_head(cluster):
    """The cluster's own config, with RAY_ADDRESS naming a loopback port nothing listens on:
    the checks go there (and fail), not to the healthy head the platform lists."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
        result = validation(cluster.config_path, RAY_ADDRESS=nowhere)
    assert result.returncode == 1
    assert f"RAY_ADDRESS={nowhere}: nothing answers" in result.stdout, result.stdout
    assert validation(cluster.config_path).returncode == 0


def test_the_api_reads_the_cluster_at_ray_address(stranger):
    config, gcs, dashboard, token = stranger
    server = ApiServer(config, env=clean_env(RAY_ADDRESS=gcs, RAY_AUTH_TOKEN=token))
    try:
        get = lambda path: requests.get(server.url + path, timeout=30).json()  # noqa: E731
        assert get("/health")["ray_connected"] is True
        nodes = get("/api/v1/resources/nodes")
        assert nodes["alive_nodes"] == 3
        # this config's platform runs no app: the nodes are Ray's, without platform apps
        assert all(n["cml_app_id"] is None and n["platform_app_id"] is None
                   for n in nodes["nodes"])
        info = get("/api/v1/cluster/info")
        assert (info["head_address"], info["dashboard_url"]) == (gcs, dashboard)
        assert "hello" in {a["name"] for a in get("/api/v1/applications")["applications"]}
        assert get("/api/v1/cluster/health")["healthy"] is True
        assert token not in server.output()
    finally:
        server.stop()

"""This cluster's Ray token goes only to this cluster: RAY_ADDRESS naming another cluster (or
a GCS that names another dashboard) gets RAY_AUTH_TOKEN when given, else no token, and an
answer of 401 says why. Dashboards here are real HTTP servers on loopback that record what
they were sent."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from checkpoints.factory import make_context
from cluster.config import parse_config
from cluster.dashboard import DashboardError
from cluster.layout import LAYOUT_KEY
from cluster.ray_address import RayAddress
from tests.fakes import FakePlatform


class Dashboard:
    """A loopback HTTP server that answers /api/v0/nodes, recording the Authorization header
    of every request (and refusing requests without the token it expects, if any)."""

    def __init__(self, expects: str | None = None):
        self.seen: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                owner.seen.append(self.headers.get("Authorization"))
                refused = expects and self.headers.get("Authorization") != f"Bearer {expects}"
                body = b"unauthorized" if refused else json.dumps(
                    {"data": {"result": {"result": []}}}).encode()
                self.send_response(401 if refused else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dashboards():
    made = []
    yield lambda **kw: made.append(Dashboard(**kw)) or made[-1]
    for d in made:
        d.stop()


def inventory(tmp_path, address: str, own_dashboard_port: int = 1, resolver=None, **env):
    """The inventory of a config whose own head runs at 127.0.0.1 (dashboard on
    ``own_dashboard_port``), reading the cluster at ``address``."""
    config = parse_config({"state_dir": str(tmp_path / "state"), "cluster_name": "own"},
                          environ={})
    platform = FakePlatform(config)
    platform.add_app("own-head", ip="127.0.0.1")
    ctx = make_context(config, platform=platform, ray_address=RayAddress.parse(
        address, token=env.get("RAY_AUTH_TOKEN")))
    ctx.store.kv.set(LAYOUT_KEY, {"port": 6379, "dashboard_port": own_dashboard_port,
                                  "serve_port": 8000, "client_port": 10001,
                                  "agent_port": 52365, "worker_ports": [26000, 26099]})
    inv = ctx.cluster.inventory
    if resolver is not None:
        inv._resolver = resolver
    return inv, ctx.cluster.token()


def test_another_clusters_dashboard_gets_no_token_and_a_refusal_says_why(tmp_path, dashboards):
    foreign = dashboards(expects="their-token")
    inv, own = inventory(tmp_path, foreign.url)
    with pytest.raises(DashboardError) as info:
        inv.ray_nodes()
    assert foreign.seen == [None]  # no Authorization at all
    assert "HTTP 401" in str(info.value) and "RAY_AUTH_TOKEN" in str(info.value)
    assert own not in str(info.value)


def test_ray_auth_token_goes_where_it_was_given_for(tmp_path, dashboards):
    foreign = dashboards(expects="their-token")
    inv, own = inventory(tmp_path, foreign.url, RAY_AUTH_TOKEN="their-token")
    assert inv.ray_nodes() == []
    assert foreign.seen == ["Bearer their-token"]


def test_this_clusters_own_dashboard_gets_its_token(tmp_path, dashboards):
    mine = dashboards()
    inv, own = inventory(tmp_path, mine.url, own_dashboard_port=mine.port)
    assert inv.ray_nodes() == [] and mine.seen == [f"Bearer {own}"]


def test_a_dashboard_a_foreign_gcs_names_gets_no_token(tmp_path, dashboards):
    """A GCS (here: one that is not this cluster's) tells where its dashboard is: neither the
    lookup nor that dashboard gets this cluster's token."""
    foreign = dashboards()
    asked = []

    def foreign_gcs(address, token):  # what `python -m cluster.ray_address` would answer
        asked.append(token)
        return foreign.url
    inv, own = inventory(tmp_path, "127.0.0.1:16379", resolver=foreign_gcs)
    inv.ray_nodes()
    assert asked == [None] and foreign.seen == [None]


def test_this_clusters_own_gcs_gets_its_token_and_so_does_its_dashboard(tmp_path, dashboards):
    mine = dashboards()
    asked = []

    def own_gcs(address, token):
        asked.append(token)
        return mine.url
    inv, own = inventory(tmp_path, "127.0.0.1:6379", own_dashboard_port=mine.port,
                         resolver=own_gcs)
    inv.ray_nodes()
    assert asked == [own] and mine.seen == [f"Bearer {own}"]

"""Code on the cluster holds the Ray token (every Ray process needs it, Ray gives workers no
other way), so it can rewrite the Serve config, the management API's args included. Where a
control plane runs the cluster that grants nothing: the management API on Serve forwards to
the control plane, which authorizes from its own tokens, and args that try to make the
replica an API of its own (a principal of its own, the store's paths) leave it unable to
serve (the store is the control plane's). On main before this, a principal added to those
args had operator and approver."""
from __future__ import annotations

import time

import pytest
import requests

from checkpoints.access import Principals, digest_salt
from cluster.config import load_config
from cluster.dashboard import DashboardClient
from tests.control_plane_fixtures import TOKENS

pytestmark = pytest.mark.integration

MALLORY = "mallory-token-0123456789abcdef"


def serve_config(plane):
    config = load_config(plane.config, environ={})
    token = (plane.state_dir / "ray_token").read_text().strip()
    info = requests.get(f"{plane.server.url}/api/v1/cluster/info", timeout=30,
                        headers={"Authorization": f"Bearer {TOKENS['ci'][1]}"}).json()
    return config, DashboardClient(info["dashboard_url"], token), info


def rewrite_management_args(dashboard: DashboardClient, args: dict) -> None:
    """What code holding the Ray token can do: PUT the Serve config with other args."""
    status = dashboard.serve_applications()
    apps = [a["deployed_app_config"] for a in status["applications"].values()]
    for app in apps:
        if app["name"] == "management-api":
            app["args"] = args
    dashboard.put_serve({"proxy_location": "HeadOnly", "http_options": {
        k: status["http_options"][k] for k in ("host", "port")}, "applications": apps})


def as_mallory(url: str) -> int:
    try:
        return requests.get(f"{url}/api/v1/whoami", timeout=5,
                            headers={"Authorization": f"Bearer {MALLORY}"}).status_code
    except requests.RequestException:
        return 0  # nothing answers: nothing granted


def test_code_on_the_cluster_cannot_make_itself_a_principal(plane):
    config, dashboard, info = serve_config(plane)
    api = info["serve_url"]
    mallory = Principals([("mallory", MALLORY, {"admin"})], salt=digest_salt(config)).digests()
    seen: set[int] = set()

    def watch(seconds: float) -> None:  # what mallory's token gets while Serve redeploys
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.add(as_mallory(api))
            time.sleep(0.5)
    try:
        # keep forwarding, but hand the replica a principal of mallory's own
        rewrite_management_args(dashboard, {"forward_to": plane.server.url,
                                            "principals": mallory, "listen_host": "127.0.0.1"})
        watch(20)
        # make it an API of its own again, over the store's paths, with mallory's principal
        rewrite_management_args(dashboard, {"config": str(plane.config),
                                            "state_dir": str(plane.state_dir),
                                            "base_dir": str(plane.root),
                                            "listen_host": "127.0.0.1", "principals": mallory})
        watch(30)
        assert 200 not in seen, seen  # never an answer for mallory's token
        assert as_mallory(plane.server.url) == 401  # and the control plane knows no mallory
    finally:  # the next deploy puts the management API back as the control plane plans it
        back = plane.cli("--deploy", "--auto-approve", token="bob", timeout=300)
        assert back.returncode == 0, back.stdout + back.stderr

"""ClusterManager (cluster/manager.py): the cluster's Ray token, made once, and where the
cluster's endpoints are, on a FakePlatform and a FakeRay."""
from __future__ import annotations

import stat

from cluster.config import parse_config
from cluster.layout import LAYOUT_KEY
from cluster.manager import ClusterManager
from cluster.ray_address import RayAddress
from store import Store
from tests.fakes import FakePlatform, FakeRay, world

LAYOUT = {"port": 6379, "dashboard_port": 8265, "serve_port": 8000, "client_port": 10001,
          "agent_port": 52365, "worker_ports": [26000, 26099], "prometheus_port": 9090}


def manager(tmp_path, platform_class=FakePlatform, ray_address=None, **doc) -> ClusterManager:
    config = parse_config({"cluster_name": "rd", "state_dir": str(tmp_path / "s"), **doc},
                          environ={})
    store = Store(config.state_dir)
    return ClusterManager(config, store, platform_class(config), dashboard_factory=FakeRay().client,
                          ray_address=ray_address)


# -- the Ray token ---------------------------------------------------------------------------------
def test_the_token_is_made_on_first_use_readable_by_its_owner_only(tmp_path):
    cluster = manager(tmp_path)
    path = cluster.config.state_dir / "ray_token"
    assert not path.exists()
    token = cluster.token()
    assert token and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token


def test_the_token_stays_the_same_for_every_later_use_and_process(tmp_path):
    cluster = manager(tmp_path)
    token = cluster.token()
    assert cluster.token() == token
    assert manager(tmp_path).token() == token


def test_a_token_already_in_the_state_dir_is_the_clusters(tmp_path):
    cluster = manager(tmp_path)
    (cluster.config.state_dir / "ray_token").write_text("given-token\n")
    assert cluster.token() == "given-token"


def test_without_token_auth_there_is_no_token_and_nothing_to_put_in_ray_s_environment(tmp_path):
    cluster = manager(tmp_path, ray={"auth": "none"})
    assert cluster.token() is None and cluster.auth_env() == {}
    assert not (cluster.config.state_dir / "ray_token").exists()


def test_rays_processes_get_the_token_and_the_mode_that_uses_it(tmp_path):
    cluster = manager(tmp_path)
    assert cluster.auth_env() == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token()}


# -- where things are ------------------------------------------------------------------------------
def test_without_a_head_nothing_is_anywhere(tmp_path):
    info = manager(tmp_path).info()
    assert (info["cluster_name"], info["platform"]) == ("rd", "local")
    assert {k for k, v in info.items() if v is not None} == {"cluster_name", "platform"}


def test_with_a_head_every_endpoint_is_on_its_address(tmp_path):
    w = world(tmp_path, mgmt=True)
    ip = next(n["node_ip"] for n in w.ray.nodes if n["is_head_node"])
    info = w.ctx.cluster.info()
    assert info["head_address"] == f"{ip}:6379"
    assert info["client_address"] == f"ray://{ip}:10001"
    assert info["dashboard_url"] == f"http://{ip}:8265"
    assert info["serve_url"] == f"http://{ip}:8000"
    assert info["management_api_url"] == f"http://{ip}:8000"
    assert info["head_url"] is None  # nodes share this host's network: the inside address
    assert info["prometheus_url"] is None  # monitoring off


def test_a_management_api_that_is_off_or_moved_is_said_so(tmp_path):
    assert world(tmp_path / "off").ctx.cluster.info()["management_api_url"] is None
    moved = world(tmp_path / "moved", mgmt=True,
                  serve={"applications": [], "management_api": {"route_prefix": "/mgmt/"}})
    assert moved.ctx.cluster.info()["management_api_url"].endswith(":8000/mgmt")


def test_prometheus_is_named_when_monitoring_is_on(tmp_path):
    w = world(tmp_path, monitoring={"enabled": True})
    w.ctx.store.kv.set(LAYOUT_KEY, LAYOUT)
    ip = next(n["node_ip"] for n in w.ray.nodes if n["is_head_node"])
    assert w.ctx.cluster.info()["prometheus_url"] == f"http://{ip}:9090"


class PublishingPlatform(FakePlatform):
    """Nodes on networks of their own, apps published at a URL of their own (as on CML)."""
    shares_host_network = False

    def public_url(self, app):
        return f"https://{app.name}.apps.example"


def test_where_the_platform_publishes_the_head_its_url_is_given(tmp_path):
    cluster = manager(tmp_path, platform_class=PublishingPlatform)
    cluster.platform.add_app("rd-head")
    cluster.store.kv.set(LAYOUT_KEY, LAYOUT)
    assert cluster.info()["head_url"] == "https://rd-head.apps.example"


def test_a_cluster_read_at_an_explicit_address_has_no_client_address_of_ours(tmp_path):
    cluster = manager(tmp_path, ray_address=RayAddress.parse("http://127.0.0.9:8265"))
    info = cluster.info()
    assert info["dashboard_url"] == "http://127.0.0.9:8265"
    assert info["client_address"] is None and info["head_address"] is None

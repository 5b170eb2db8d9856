"""RAY_ADDRESS: its forms, its errors, and the inventory reading the cluster it names."""
from __future__ import annotations

import pytest

from checkpoints.factory import make_context
from cluster.config import parse_config
from cluster.health import head_check
from cluster.ray_address import (
    BadRayAddress,
    RayAddress,
    RayAddressUnreachable,
    from_environ,
    resolve_dashboard,
)
from tests.fakes import FakePlatform, FakeRay


@pytest.mark.parametrize("text,kind,hostport,gcs", [
    ("127.0.0.1:6379", "gcs", "127.0.0.1:6379", "127.0.0.1:6379"),
    (" 127.0.0.2:6380 ", "gcs", "127.0.0.2:6380", "127.0.0.2:6380"),
    ("ray://127.0.0.1:10001", "client", "127.0.0.1:10001", None),
    ("ray://head.example.com", "client", "head.example.com:10001", None),
    ("http://127.0.0.1:8265", "dashboard", "127.0.0.1:8265", None),
    ("https://ray.example.com", "dashboard", "ray.example.com:8265", None),
    ("[::1]:6379", "gcs", "[::1]:6379", "[::1]:6379"),
])
def test_the_three_forms_parse(text, kind, hostport, gcs):
    address = RayAddress.parse(text)
    assert (address.kind, address.hostport, address.gcs_address) == (kind, hostport, gcs)


@pytest.mark.parametrize("text,says", [
    ("auto", "'auto' and 'local'"), ("local", "'auto' and 'local'"),
    ("127.0.0.1", "host:port"), ("grpc://127.0.0.1:1", "unknown scheme"),
    ("127.0.0.1:notaport", "not an address"), ("http://127.0.0.1:8265/path", "not an address"),
    ("ray://user:pw@127.0.0.1:10001", "not an address")])
def test_what_is_not_an_address_is_a_clear_error(text, says):
    with pytest.raises(BadRayAddress) as info:
        RayAddress.parse(text)
    assert says in str(info.value) and info.value.field == "RAY_ADDRESS"


def test_from_environ_takes_the_token_and_never_shows_it():
    assert from_environ({}) is None and from_environ({"RAY_ADDRESS": " "}) is None
    address = from_environ({"RAY_ADDRESS": "127.0.0.1:6379", "RAY_AUTH_TOKEN": "s3cret-token"})
    assert address.token == "s3cret-token" and "s3cret-token" not in repr(address)


def test_a_dashboard_address_needs_no_asking_and_a_closed_port_fails_at_once():
    assert resolve_dashboard(RayAddress.parse("http://127.0.0.9:8265"), None) == \
        "http://127.0.0.9:8265"
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = RayAddress.parse(f"127.0.0.1:{s.getsockname()[1]}")
        with pytest.raises(RayAddressUnreachable) as info:
            resolve_dashboard(closed, None, timeout=5)
    assert "nothing answers" in str(info.value)


def test_the_inventory_reads_the_cluster_at_the_address_not_the_platforms_head(tmp_path):
    config = parse_config({"cluster_name": "rd", "state_dir": str(tmp_path / "s")}, environ={})
    platform, ray = FakePlatform(config), FakeRay()
    seen = []

    def dashboards(url, token):
        seen.append((url, token))
        return ray.client(url, token)
    address = RayAddress.parse("http://127.0.0.9:8265", token="their-token")
    cluster = make_context(config, platform=platform, dashboard_factory=dashboards,
                           ray_address=address).cluster
    inventory = cluster.inventory
    assert inventory.head_app() is None and inventory.has_head()
    ray.nodes.append({"node_id": "h", "node_ip": "127.0.0.9", "is_head_node": True,
                      "state": "ALIVE", "resources_total": {"CPU": 2.0}})
    [node] = inventory.nodes()
    assert (node.node_type, node.alive, node.platform_app_id) == ("head", True, None)
    assert seen == [("http://127.0.0.9:8265", "their-token")]  # RAY_AUTH_TOKEN, not ours
    assert inventory.head_address() is None  # a dashboard address says nothing of the GCS
    assert inventory.proxy_url() is None  # Serve does not run there
    ray.http_options = {"host": "0.0.0.0", "port": 8000}
    assert inventory.proxy_url() == "http://127.0.0.9:8000"
    ray.http_options = {"host": "127.0.0.9", "port": 8001}
    assert cluster.serve.proxy_url == "http://127.0.0.9:8001"
    check = head_check(cluster)
    assert check.ok and "RAY_ADDRESS http://127.0.0.9:8265" in check.detail
    ray.healthy = False
    assert not head_check(cluster).ok

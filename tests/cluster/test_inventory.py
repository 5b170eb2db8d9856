"""NodeInventory's node addresses where apps do not carry them (CML): each published file is
read once, remembered in the store for the next process, and never read
when there is no Ray node to match."""
from __future__ import annotations

import json
from dataclasses import replace

from checkpoints.factory import make_context
from cluster.config import parse_config
from cluster.layout import LAYOUT_KEY
from cluster.platforms.records import node_tags
from tests.fakes import FakePlatform, FakeRay


class PublishingPlatform(FakePlatform):
    """Apps without an address; each node publishes ``nodes/<app>.json`` as the launcher
    does. Counts the file reads (one CML API call each)."""

    def __init__(self, config=None):
        super().__init__(config)
        self.reads: list[str] = []

    def add_app(self, name, *args, **kwargs):
        app = super().add_app(name, *args, **kwargs)
        self.files[f"nodes/{name}.json"] = json.dumps({"app": name, "ip": app.ip})
        self.apps[app.id] = replace(app, ip=None)
        return app  # with its address, for the test to set up Ray's node rows

    def read_file(self, path):
        self.reads.append(path)
        return super().read_file(path)


def cluster(tmp_path, workers: int = 20, dashboard: bool = True):
    cfg = parse_config({"cluster_name": "rd", "state_dir": str(tmp_path / "s"),
                        "project_dir": str(tmp_path)}, environ={})
    platform, ray = PublishingPlatform(cfg), FakeRay()
    head = platform.add_app("rd-head")
    ray.node(head, head=True)
    for n in range(1, workers + 1):
        ray.node(platform.add_app(f"rd-worker-{n}"))
    ctx = make_context(cfg, platform=platform, dashboard_factory=ray.client)
    if dashboard:
        ctx.store.kv.set(LAYOUT_KEY, {"port": 6379, "dashboard_port": 8265, "serve_port": 8000,
                                      "client_port": 10001, "agent_port": 52365,
                                      "worker_ports": [26000, 26099]})
    return cfg, platform, ray, ctx


def test_every_address_is_read_once_and_the_next_process_reads_none(tmp_path):
    cfg, platform, ray, ctx = cluster(tmp_path)
    nodes = ctx.cluster.inventory.nodes()
    assert len(nodes) == 21 and all(n.alive for n in nodes)
    assert sorted(platform.reads) == sorted(f"nodes/{a.name}.json" for a in platform.apps.values())
    ctx.cluster.inventory.nodes()
    assert len(platform.reads) == 21  # remembered in this process

    later = make_context(cfg, platform=platform, dashboard_factory=ray.client)  # the next CLI run
    assert all(n.alive for n in later.cluster.inventory.nodes())
    assert len(platform.reads) == 21  # remembered in the store


def test_with_no_ray_node_to_match_no_address_is_read(tmp_path):
    _, platform, _, ctx = cluster(tmp_path, dashboard=False)  # no layout: no dashboard to ask
    nodes = ctx.cluster.inventory.nodes()
    assert len(nodes) == 21 and not any(n.alive for n in nodes)
    assert platform.reads == []


def test_teardown_forgets_the_addresses(tmp_path):
    cfg, platform, ray, ctx = cluster(tmp_path, workers=2)
    ctx.cluster.inventory.nodes()
    ctx.cluster.lifecycle.teardown()
    again = make_context(cfg, platform=platform, dashboard_factory=ray.client)
    assert again.store.kv.get("cluster.node_ips") is None


def test_an_app_that_only_looks_like_a_worker_is_not_the_clusters(tmp_path):
    """Apps of the project that someone else made (on CML, say) share its listing: a name
    with the workers' prefix but no index is neither listed nor removed with the cluster."""
    cfg, platform, ray, ctx = cluster(tmp_path, workers=2)
    platform.add_app("rd-worker-old")
    platform.add_app("rd-worker-2-copy")
    inventory = ctx.cluster.inventory
    assert [a.name for a in inventory.worker_apps()] == ["rd-worker-1", "rd-worker-2"]
    assert sorted(a.name for a in inventory.owned_apps()) == \
        ["rd-head", "rd-worker-1", "rd-worker-2"]


def test_the_clusters_apps_are_those_tagged_with_it_whatever_their_names(tmp_path):
    """Identity is by tags: an app named like a worker without the cluster's tags is not
    one (made by hand, or another cluster's), and a worker tagged as one is, by its index."""
    cfg, platform, ray, ctx = cluster(tmp_path, workers=1)
    platform.add_app("rd-worker-7", tags={})  # someone's app that only has the name
    platform.add_app("rd-worker-3", tags=node_tags("rd-worker", "head"))  # cluster rd-worker's
    platform.add_app("renamed-by-hand", tags=node_tags("rd", "worker", 12))
    platform.add_app("rd-worker-2", tags=node_tags("rd", "worker", 2))
    inventory = ctx.cluster.inventory
    assert [a.name for a in inventory.worker_apps()] == \
        ["rd-worker-1", "rd-worker-2", "renamed-by-hand"]  # by index (1, 2, 12), not by name
    assert inventory.head_app().name == "rd-head"
    assert sorted(a.name for a in inventory.owned_apps()) == \
        ["rd-head", "rd-worker-1", "rd-worker-2", "renamed-by-hand"]

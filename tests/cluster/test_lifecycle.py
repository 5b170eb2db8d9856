"""Waiting for many node apps: one platform listing per try, however many apps."""
from __future__ import annotations

from dataclasses import replace

import pytest

from cluster.layout import LAYOUT_KEY
from cluster.lifecycle import NodeFailed, apps_running
from cluster.platforms.records import FAILED, RUNNING, STARTING
from tests.fakes import FakePlatform, world


class CountingPlatform(FakePlatform):
    def __init__(self):
        super().__init__()
        self.listings = 0

    def list_apps(self):
        self.listings += 1
        return super().list_apps()

    def get_app(self, app_id):
        raise AssertionError("apps are waited for with one listing, not one call each")


def test_one_listing_answers_for_every_app():
    platform = CountingPlatform()
    apps = [platform.add_app(f"rd-worker-{n}", status=STARTING) for n in range(1, 101)]
    assert apps_running(platform, apps) is False and platform.listings == 1
    for app in apps:
        platform.apps[app.id] = replace(app, status=RUNNING)
    assert apps_running(platform, apps) is True and platform.listings == 2


def test_an_app_that_failed_or_went_ends_the_wait_with_its_name():
    platform = CountingPlatform()
    ok, bad = platform.add_app("rd-worker-1"), platform.add_app("rd-worker-2", status=FAILED)
    with pytest.raises(NodeFailed, match="rd-worker-2 is failed"):
        apps_running(platform, [ok, bad])
    platform.delete_app(bad.id)
    with pytest.raises(NodeFailed, match="rd-worker-2 is unknown"):
        apps_running(platform, [ok, bad])


def test_a_new_worker_never_gets_a_port_the_head_will_bind_later(tmp_path):
    # the Serve proxy binds serve_port only at serve_deploy: a worker started before must not
    # take it (seen: "Failed to bind to address ...", the proxy never came up)
    from cluster.layout import PortLayout, ray_args
    from cluster.ports import pick_port
    w = world(tmp_path)
    layout = PortLayout(w.ctx.config, w.ctx.store)
    first_free = pick_port(0, set(), layout.offset)  # what a worker would be given first
    w.ctx.store.kv.set(LAYOUT_KEY, {**w.ctx.store.kv.get(LAYOUT_KEY), "serve_port": first_free})
    app = w.ctx.cluster.lifecycle.add_workers(1)[0]
    given = {v for k, v in ray_args(app).items() if k.endswith("port")}
    assert first_free not in given and not given & layout.current().head_ports

"""The Serve manager (cluster/serve.py) over an in-memory Ray: a change is merged into the
running apps (the others kept, as Serve's declarative PUT would otherwise drop them), a route
prefix used twice is refused before anything is PUT, and the waits say what failed."""
from __future__ import annotations

import pytest

from cluster.serve import RoutePrefixTaken, ServeError, ServeManager, same_app
from tests.fakes import FakeClock, world


def manager(w) -> ServeManager:
    return ServeManager(w.ctx.config, w.ctx.cluster.inventory, clock=FakeClock())


def test_an_upsert_is_merged_into_the_running_apps_and_a_remove_drops_only_that_one(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app("other", "/other", "pkg.other:app")
    serve = manager(w)
    serve.apply(upserts=[{"name": "greeter", "import_path": "pkg.g:app", "route_prefix": "/g"}])
    put = w.ray.puts[-1]
    assert sorted(a["name"] for a in put["applications"]) == ["greeter", "hello", "other"]
    assert put["proxy_location"] == "HeadOnly" and put["http_options"]["port"] == 8000
    serve.apply(removes=["other"])
    assert sorted(a["name"] for a in w.ray.puts[-1]["applications"]) == ["hello"]


def test_an_upsert_keeps_the_fields_it_does_not_set(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app", args={"greeting": "hi"})
    manager(w).apply(upserts=[{"name": "hello", "route_prefix": "/hi"}])
    [app] = w.ray.puts[-1]["applications"]
    assert app == {"name": "hello", "import_path": "examples.apps.hello:app",
                   "route_prefix": "/hi", "args": {"greeting": "hi"}}


def test_a_route_prefix_used_twice_is_refused_before_anything_is_put(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    with pytest.raises(RoutePrefixTaken, match="'/hello' of 'copy' is already used by "
                                               "application 'hello'"):
        manager(w).apply(upserts=[{"name": "copy", "import_path": "x:app",
                                   "route_prefix": "/hello"}])
    assert w.ray.puts == []


def test_waiting_for_running_apps_ends_with_the_message_of_one_that_failed(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", status="DEPLOY_FAILED")
    w.ray.serve["hello"]["message"] = "ModuleNotFoundError: No module named 'pkg'"
    with pytest.raises(ServeError, match="application hello failed: ModuleNotFoundError"):
        manager(w).wait_running(["hello"], timeout=5)
    w.ray.app("hello", "/hello")
    manager(w).wait_running(["hello"], timeout=5)


def test_the_ingress_is_the_one_ray_names_or_the_only_deployment():
    assert ServeManager.ingress_of({"deployment_topology": {"ingress_deployment": "In"},
                                    "deployments": {"In": {}, "Other": {}}}) == "In"
    assert ServeManager.ingress_of({"deployments": {"Only": {}}}) == "Only"
    assert ServeManager.ingress_of({"deployments": {"A": {}, "B": {}}}) is None


def test_an_app_is_the_same_when_the_keys_it_manages_are_equal_empty_or_absent_alike():
    live = {"name": "a", "import_path": "m:app", "route_prefix": "/a", "args": {}}
    assert same_app(live, {"name": "a", "import_path": "m:app", "route_prefix": "/a"})
    assert not same_app(live, {"name": "a", "import_path": "m:app", "route_prefix": "/b"})

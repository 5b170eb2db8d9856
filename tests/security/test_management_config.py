"""The management API on the cluster enforces the config it started with: a change of what
it enforces (serve.allowed_import_prefixes, approvals, tokens, ...) is part of the desired
state, planned as a replacement of its app and shown; a replica whose config changed since
it was deployed refuses to start rather than enforce settings nobody planned."""
from __future__ import annotations

import pytest

from tests.conftest import write_config
from tests.fakes import CONFIGURED, world


def serve_section(prefixes):
    return {"applications": [CONFIGURED], "management_api": {"enabled": True},
            "allowed_import_prefixes": prefixes}


def management_app(w) -> dict:
    """The management app as this world's config deploys it."""
    return next(a for a, _ in w.ctx.cluster.serve.desired_apps([])
                if a["name"] == "management-api")


def running(w, app: dict) -> None:
    """Serve runs the hello app and ``app`` in world ``w``."""
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    w.ray.app(app["name"], app["route_prefix"], app["import_path"],
              **{k: v for k, v in app.items() if k not in ("name", "route_prefix", "import_path")})


def test_a_changed_setting_it_enforces_replaces_the_management_api(tmp_path):
    before = world(tmp_path, serve=serve_section(["examples."]))
    running(before, management_app(before))
    assert before.plan("serve_deploy").empty  # deployed as configured: satisfied
    after = world(tmp_path, serve=serve_section(["examples.", "partner_apps."]))
    running(after, management_app(before))  # still the app the first config deployed
    plan = after.plan("serve_deploy")
    (action,) = plan.actions
    assert (str(action.kind), action.name, plan.destructive) == ("replace", "management-api",
                                                                 True)
    assert action.details["changes"] == {
        "args.enforces.serve_policy.allowed_import_prefixes":
            '["examples."] -> ["examples.","partner_apps."]',
        "args.settings_digest": "changed"}


def test_the_digest_covers_the_enforced_settings_without_secrets(tmp_path):
    from cluster.serve import enforced_settings, settings_digest
    w = world(tmp_path, serve=serve_section(["examples."]), notifications={
        "targets": [{"name": "ops", "type": "webhook", "url": "https://hooks.example.com/x?k=1",
                     "secret_env": "HOOK_SECRET"}]})
    settings = enforced_settings(w.ctx.config)
    assert "hooks.example.com" not in str(settings) and "HOOK_SECRET" not in str(settings)
    stricter = world(tmp_path / "b", serve=serve_section(["examples."]),
                     approvals={"ttl_seconds": 60})
    assert settings_digest(enforced_settings(stricter.ctx.config)) != settings_digest(settings)


def test_a_replica_whose_config_changed_since_its_deploy_refuses_to_start(tmp_path):
    from api_server import ApiSetupError
    from api_server.serve_app import asgi_app
    from cluster.config import load_config
    from cluster.serve import enforced_settings, settings_digest
    doc = {"state_dir": str(tmp_path / "state"), "cluster_name": "replica",
           "serve": {"applications": [], "allowed_import_prefixes": ["examples."]}}
    path = write_config(tmp_path / "c.yaml", doc)
    deployed = settings_digest(enforced_settings(load_config(str(path), environ={})))
    args = {"config": str(path), "state_dir": str(tmp_path / "state"), "base_dir": str(tmp_path),
            "listen_host": "127.0.0.2", "principals": [], "settings_digest": deployed}
    asgi_app(args)  # as deployed: it starts
    write_config(path, {**doc, "serve": {**doc["serve"], "allowed_import_prefixes": ["x."]}})
    with pytest.raises(ApiSetupError, match="no longer holds the settings"):
        asgi_app(args)

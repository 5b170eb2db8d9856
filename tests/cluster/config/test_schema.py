"""The config's schemas (cluster/config/schema.py), section by section: the typed objects they
load into, the defaults that depend on other fields, and the rules across fields. Whole
configs through parse_config: tests/cluster/test_config.py."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from cluster.config import flatten_errors, model
from cluster.config.schema import (
    ApiSchema,
    ApprovalsSchema,
    ConfigSchema,
    NotificationsSchema,
    RaySchema,
    ResourcesSchema,
    ServeAppSchema,
    ServeSchema,
)
from cluster.platforms import DEFAULT

APP = {"name": "hello", "import_path": "examples.apps.hello:app", "route_prefix": "/hello"}


def errors(schema, data) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        schema.load(data)
    return flatten_errors(info.value.messages)


# -- sections load into their dataclasses ----------------------------------------------------------
def test_a_section_loads_into_its_dataclass_with_lists_as_tuples():
    serve = ServeSchema().load({"applications": [APP], "allowed_env_vars": ["APP_*", "MY_*"]})
    assert isinstance(serve, model.ServeConfig)
    assert isinstance(serve.applications, tuple) and isinstance(serve.applications[0], model.ServeApp)
    assert serve.allowed_env_vars == ("APP_*", "MY_*")
    assert isinstance(serve.management_api, model.ManagementApiConfig)  # absent: its defaults


def test_a_whole_config_loads_every_section_even_when_absent_or_empty():
    data = ConfigSchema().load({"serve": None, "api": None})
    assert data["platform"] == DEFAULT and data["cluster_name"] == "ray-local"
    assert isinstance(data["serve"], model.ServeConfig) and isinstance(data["api"], model.ApiConfig)
    assert isinstance(data["workers"], model.WorkersConfig) and data["workers"].count == 2


def test_unknown_fields_are_refused_in_every_section():
    assert set(errors(ConfigSchema(), {"workers": {"cuont": 2}, "colour": "blue"})) == {
        "workers.cuont", "colour"}


# -- fields and their rules ------------------------------------------------------------------------
@pytest.mark.parametrize("port,ok", [(0, True), (1024, True), (65535, True), (1023, False),
                                     (80, False), (65536, False)])
def test_a_port_is_0_for_any_free_one_or_an_unprivileged_port(port, ok):
    if ok:
        assert RaySchema().load({"port": port}).port == port
    else:
        assert "port" in errors(RaySchema(), {"port": port})


def test_the_object_store_must_be_smaller_than_the_memory():
    assert errors(ResourcesSchema(), {"memory": 1, "object_store_memory": 1}) == {
        "object_store_memory": ["Must be less than memory."]}
    assert ResourcesSchema().load({"memory": 1, "object_store_memory": 0.5}).object_store_memory == 0.5
    # against the default memory (2 GB) when none is given
    assert "object_store_memory" in errors(ResourcesSchema(), {"object_store_memory": 2})


@pytest.mark.parametrize("field,value", [
    ("name", "has space"), ("name", "-leading"), ("import_path", "no_colon"),
    ("import_path", "pkg.mod:"), ("route_prefix", "hello"),
])
def test_an_apps_identity_is_checked(field, value):
    assert field in errors(ServeAppSchema(), {**APP, field: value})


# -- serve: defaults from the apps, names and routes apart from the management API -----------------
def test_deployable_import_prefixes_default_to_the_packages_of_the_configured_apps():
    serve = ServeSchema().load({"applications": [
        APP, {"name": "b", "import_path": "examples.apps.other:app", "route_prefix": "/b"},
        {"name": "c", "import_path": "mine:app", "route_prefix": "/c"}]})
    assert serve.allowed_import_prefixes == ("examples", "mine")
    given = ServeSchema().load({"applications": [APP], "allowed_import_prefixes": ["pkg.sub"]})
    assert given.allowed_import_prefixes == ("pkg.sub",)


def test_an_app_may_not_take_the_management_apis_name():
    found = errors(ServeSchema(), {"applications": [{**APP, "name": "management-api"}]})
    assert "Duplicate name 'management-api'" in found["applications"][0]


def test_an_app_may_not_take_the_management_apis_routes():
    found = errors(ServeSchema(), {"applications": [APP, {**APP, "name": "x",
                                                          "route_prefix": "/api/v1/approvals"}]})
    assert list(found) == ["applications.1.route_prefix"]
    assert "/api/v1/approvals/<key>" in found["applications.1.route_prefix"][0]


def test_with_the_management_api_moved_or_off_those_routes_are_free():
    taken = {**APP, "name": "management-api", "route_prefix": "/api/v1/approvals"}
    moved = ServeSchema().load({"applications": [{**taken, "name": "x"}],
                                "management_api": {"route_prefix": "/mgmt"}})
    assert moved.applications[0].route_prefix == "/api/v1/approvals"
    off = ServeSchema().load({"applications": [taken], "management_api": {"enabled": False}})
    assert off.applications[0].name == "management-api"


# -- approvals -------------------------------------------------------------------------------------
def test_operation_policies_given_are_merged_over_the_defaults():
    approvals = ApprovalsSchema().load({"operations": {"node_add": "approval"}})
    assert approvals.operations == {**model.OPERATION_POLICY, "node_add": "approval"}


def test_unknown_operations_and_policies_are_refused():
    found = errors(ApprovalsSchema(), {"operations": {"node_add": "maybe", "reboot": "none"}})
    assert set(found) == {"operations.node_add.value", "operations.reboot.key"}


def test_only_checkpoints_may_require_an_approval():
    assert "required.0" in errors(ApprovalsSchema(), {"required": ["node_add"]})
    assert ApprovalsSchema().load({"required": ["worker_launch"]}).required == ("worker_launch",)


# -- api -------------------------------------------------------------------------------------------
def test_trusted_proxies_are_addresses_or_networks_never_names():
    assert ApiSchema().load({"trusted_proxies": ["10.0.0.0/8", "192.168.1.7"]}).trusted_proxies \
        == ("10.0.0.0/8", "192.168.1.7")
    assert list(errors(ApiSchema(), {"trusted_proxies": ["10.0.0.0/8", "proxy.example"]})) == [
        "trusted_proxies.1"]


def test_allowed_hosts_are_names_without_a_scheme():
    assert "allowed_hosts.0" in errors(ApiSchema(), {"allowed_hosts": ["https://ray.example"]})
    assert ApiSchema().load({"allowed_hosts": ["ray.example", "[::1]"]}).allowed_hosts == (
        "ray.example", "[::1]")


# -- notifications ---------------------------------------------------------------------------------
WEBHOOK = {"name": "ops", "type": "webhook", "url_env": "OPS_URL", "secret_env": "OPS_SECRET"}


def test_a_webhook_target_from_the_environment_loads():
    notifications = NotificationsSchema().load({"targets": [WEBHOOK]})
    [target] = notifications.targets
    assert (target.url_env, target.secret_env) == ("OPS_URL", "OPS_SECRET")
    assert target.events == model.NOTIFICATION_EVENTS  # every event unless told


@pytest.mark.parametrize("target,field,says", [
    ({**WEBHOOK, "url_file": "/etc/url"}, "url", "exactly one of"),
    ({"name": "ops", "type": "webhook", "secret_env": "S"}, "url", "exactly one of"),
    ({"name": "s", "type": "slack", "url": "https://hooks.example/x"}, "url", "is a secret"),
    ({"name": "w", "type": "webhook", "url": "https://hooks.example/x"}, "secret_env", "signed"),
    ({**WEBHOOK, "events": ["run.exploded"]}, "events.0", "Must be one of"),
])
def test_a_targets_sources_are_checked(target, field, says):
    found = errors(NotificationsSchema(), {"targets": [target]})
    assert says in " ".join(found[f"targets.0.{field}"])


def test_target_names_are_unique():
    assert errors(NotificationsSchema(), {"targets": [WEBHOOK, {**WEBHOOK, "type": "slack",
                                                                "secret_env": None}]}) == {
        "targets": ["target names must be unique"]}


# -- the platform's own section --------------------------------------------------------------------
def test_the_selected_platform_says_what_its_section_needs():
    found = errors(ConfigSchema(), {"platform": "cml", "cml": {"host": "https://ml.example"}})
    assert found == {"cml.api_key": ["Required when platform is cml."]}
    # not selected: the same section needs nothing
    assert ConfigSchema().load({"cml": {"host": "https://ml.example"}})["platform"] == DEFAULT

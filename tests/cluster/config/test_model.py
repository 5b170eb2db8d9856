"""The typed config objects (cluster/config/model.py): the sizes they compute, the Serve REST
entry an app becomes, and what makes two configs equal."""
from __future__ import annotations

import dataclasses

import pytest

from cluster.config import parse_config
from cluster.config.model import (
    OPERATION_POLICY,
    ApprovalsConfig,
    NodeResources,
    ServeApp,
    WorkersConfig,
)

GIB = 1024 ** 3


def test_memory_is_given_in_gb_and_counted_in_bytes():
    assert NodeResources(cpu=1, memory=2).memory_bytes == 2 * GIB
    assert NodeResources(cpu=1, memory=0.5).memory_bytes == GIB // 2


def test_the_object_store_defaults_to_30_percent_of_memory():
    assert NodeResources(cpu=1, memory=10).object_store_bytes == int(3 * GIB)


def test_the_object_store_is_never_below_a_tenth_of_a_gb():
    assert NodeResources(cpu=1, memory=0.25).object_store_bytes == int(0.1 * GIB)


def test_a_configured_object_store_size_wins():
    assert NodeResources(cpu=1, memory=10, object_store_memory=1.5).object_store_bytes == \
        int(1.5 * GIB)


def test_workers_are_node_resources_with_a_count():
    workers = WorkersConfig(cpu=2, memory=4, count=3)
    assert isinstance(workers, NodeResources) and workers.memory_bytes == 4 * GIB
    assert (workers.count, workers.drain_timeout_seconds) == (3, 60)


def test_a_bare_app_is_the_three_fields_serve_needs():
    app = ServeApp(name="hello", import_path="pkg.mod:app", route_prefix="/hello")
    assert app.serve_config() == {"name": "hello", "import_path": "pkg.mod:app",
                                  "route_prefix": "/hello"}


def test_an_apps_args_runtime_env_and_deployments_are_passed_to_serve_when_set():
    deployment = {"name": "D", "num_replicas": 2}
    app = ServeApp(name="a", import_path="p:app", route_prefix="/a", args={"greeting": "hi"},
                   runtime_env={"env_vars": {"APP_X": "1"}}, deployments=(deployment,))
    entry = app.serve_config()
    assert entry["args"] == {"greeting": "hi"}
    assert entry["runtime_env"] == {"env_vars": {"APP_X": "1"}}
    assert entry["deployments"] == [{"name": "D", "num_replicas": 2}]
    entry["deployments"][0]["num_replicas"] = 9  # the entry is the caller's to change
    assert deployment["num_replicas"] == 2


def test_each_approvals_config_has_its_own_copy_of_the_operation_policy():
    one, two = ApprovalsConfig(), ApprovalsConfig()
    one.operations["node_add"] = "approval"
    assert two.operations == OPERATION_POLICY and OPERATION_POLICY["node_add"] == "none"


def test_config_objects_are_frozen(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "s")}, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers = config.head  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers.count = 9  # type: ignore[misc]


def test_two_configs_of_the_same_settings_are_equal_whatever_document_they_came_from(tmp_path):
    doc = {"state_dir": str(tmp_path / "s"), "workers": {"count": 2}}
    written = parse_config(doc, environ={})
    from_env = parse_config({"state_dir": str(tmp_path / "s")}, environ={"RAY_NUM_WORKERS": "2"})
    assert written.document != from_env.document
    assert written == from_env
    assert written != parse_config({**doc, "workers": {"count": 3}}, environ={})


def test_the_document_which_holds_secrets_is_never_in_the_repr(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "s"),
                           "cml": {"api_key": "sekrit-0123456789"}}, environ={})
    assert config.document["cml"]["api_key"] == "sekrit-0123456789"
    assert "sekrit-0123456789" not in repr(config) and "document=" not in repr(config)

"""Older config shapes and environment overrides (cluster/config/legacy.py), on the documents
themselves, before validation. Through parse_config: tests/cluster/test_config.py."""
from __future__ import annotations

import pytest

from cluster.config.legacy import ENV_OVERRIDES, all_env_overrides, apply_env, map_legacy
from cluster.platforms import REGISTRY
from cluster.platforms.base import ConfigShapeError


# -- older shapes ----------------------------------------------------------------------------------
def test_the_ray_cluster_shape_maps_every_field_onto_its_section():
    doc = map_legacy({"cluster_name": "c", "ray_cluster": {
        "num_workers": 4, "head_cpu": 2, "head_memory": 3, "worker_cpu": 5, "worker_memory": 6,
        "worker_gpus": 1}})
    assert doc == {"cluster_name": "c", "head": {"cpu": 2, "memory": 3},
                   "workers": {"count": 4, "cpu": 5, "memory": 6, "gpus": 1}}


def test_the_ray_cluster_shape_fills_in_sections_without_dropping_their_other_fields():
    doc = map_legacy({"workers": {"drain_timeout_seconds": 30},
                      "ray_cluster": {"num_workers": 2}})
    assert doc["workers"] == {"drain_timeout_seconds": 30, "count": 2}


def test_the_document_given_is_not_changed():
    given = {"workers": {"cpu": 1}, "ray_cluster": {"num_workers": 2}}
    map_legacy(given)
    assert given == {"workers": {"cpu": 1}, "ray_cluster": {"num_workers": 2}}


def test_an_empty_ray_cluster_section_is_dropped():
    assert map_legacy({"cluster_name": "c", "ray_cluster": None}) == {"cluster_name": "c"}


def test_unknown_ray_cluster_fields_are_each_named():
    with pytest.raises(ConfigShapeError) as info:
        map_legacy({"ray_cluster": {"num_workers": 1, "colour": "blue", "size": 3}})
    assert info.value.errors == {"ray_cluster.colour": ["Unknown field."],
                                 "ray_cluster.size": ["Unknown field."]}


def test_a_ray_cluster_that_is_not_a_mapping_is_a_shape_error():
    with pytest.raises(ConfigShapeError) as info:
        map_legacy({"ray_cluster": [1, 2]})
    assert info.value.errors == {"ray_cluster": ["Must be a mapping."]}


def test_a_platforms_older_shape_is_mapped_too_and_its_defaults_said():
    warnings: list[str] = []
    doc = map_legacy({"cai": {"host": "https://h", "api_key": "k", "num_workers": 2}}, warnings)
    assert doc["platform"] == "cml" and doc["workers"]["count"] == 2
    assert doc["cml"] == {"host": "https://h", "api_key": "k"}
    assert len(warnings) == 1 and "head_resources absent" in warnings[0]


# -- environment overrides -------------------------------------------------------------------------
def test_every_platforms_variables_override_its_own_section():
    overrides = all_env_overrides()
    assert {k: overrides[k] for k in ENV_OVERRIDES} == ENV_OVERRIDES
    for platform in REGISTRY.values():
        for var, key in platform.env_overrides.items():
            assert overrides[var] == (platform.settings_section, key)


def test_overrides_replace_fields_and_say_which_variable_set_each():
    doc = {"workers": {"count": 2, "cpu": 1}}
    origins = apply_env(doc, {"RAY_NUM_WORKERS": "6", "FORCE_REBUILD": "yes",
                              "CML_HOST": "https://ml.example"})
    assert doc["workers"] == {"count": "6", "cpu": 1}  # as text: the schema types it
    assert doc["force_rebuild"] == "yes" and doc["cml"]["host"] == "https://ml.example"
    assert origins == {"workers.count": "RAY_NUM_WORKERS", "force_rebuild": "FORCE_REBUILD",
                       "cml.host": "CML_HOST"}


def test_empty_or_absent_variables_override_nothing():
    doc = {"workers": {"count": 2}}
    assert apply_env(doc, {"RAY_NUM_WORKERS": "", "RAY_WORKER_GPUS": ""}) == {}
    assert doc == {"workers": {"count": 2}}


def test_a_section_that_is_not_a_mapping_is_left_for_the_schema_to_refuse():
    doc = {"workers": ["not", "a", "mapping"]}
    assert apply_env(doc, {"RAY_NUM_WORKERS": "3"}) == {}
    assert doc == {"workers": ["not", "a", "mapping"]}


def test_platform_defaults_fill_only_what_the_config_leaves_out():
    environ = {"CDSW_API_URL": "https://ml.example/api/v1", "CDSW_APIV2_KEY": "from-env"}
    doc = {"cml": {"api_key": "from-config"}}
    origins = apply_env(doc, environ)
    assert doc["cml"] == {"api_key": "from-config", "host": "https://ml.example"}
    assert origins == {"cml.host": "CDSW_API_URL"}


def test_an_override_wins_over_the_config_where_a_platform_default_does_not():
    doc = {"cml": {"host": "https://config.example"}}
    origins = apply_env(doc, {"CML_HOST": "https://override.example",
                              "CDSW_API_URL": "https://ambient.example"})
    assert doc["cml"]["host"] == "https://override.example"
    assert origins == {"cml.host": "CML_HOST"}


def test_an_empty_section_takes_the_environments_override_and_the_older_shape():
    """`workers:` with nothing under it is an empty section, not a reason to drop what the
    environment or ray_cluster: say (both used to be lost or crash)."""
    from cluster.config import parse_config
    assert parse_config({"workers": None}, environ={"RAY_NUM_WORKERS": "3"}).workers.count == 3
    assert parse_config({"workers": None, "ray_cluster": {"num_workers": 4}},
                        environ={}).workers.count == 4

"""The ``cml:`` section (cluster/platforms/cml/settings.py) on its own: what the environment
fills in inside a CML workload, what a selected CML needs, the older ``cai:`` shape's
errors, and the runtimes a message offers. The ``cai:`` shape through parse_config:
tests/cluster/test_config.py."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from cluster.platforms.base import ConfigShapeError
from cluster.platforms.cml.settings import (
    CMLSchema,
    CMLSettings,
    env_defaults,
    map_cai,
    required_when_selected,
    runtime_choices,
)


# -- what a CML workload's environment gives -------------------------------------------------------
@pytest.mark.parametrize("api_url", ["https://ml.example/api/v1", "https://ml.example/api/v1/",
                                     "https://ml.example", " https://ml.example/ "])
def test_inside_cml_the_workspace_is_its_api_url_without_the_api_path(api_url):
    section: dict = {}
    filled = env_defaults(section, {"CDSW_API_URL": api_url})
    assert section == {"host": "https://ml.example"} and filled == {"host": "CDSW_API_URL"}


def test_inside_cml_the_key_is_the_one_cml_gives_the_workload():
    section: dict = {}
    assert env_defaults(section, {"CDSW_APIV2_KEY": "workload-key"}) == {
        "api_key": "CDSW_APIV2_KEY"}
    assert section == {"api_key": "workload-key"}


def test_what_the_config_says_wins_over_the_workloads_environment():
    section = {"host": "https://configured.example", "api_key": "configured-key"}
    assert env_defaults(section, {"CDSW_API_URL": "https://ambient.example/api/v1",
                                  "CDSW_APIV2_KEY": "ambient-key"}) == {}
    assert section == {"host": "https://configured.example", "api_key": "configured-key"}


def test_outside_cml_nothing_is_filled_in():
    section: dict = {}
    assert env_defaults(section, {"CDSW_API_URL": "  ", "HOME": "/root"}) == {}
    assert section == {}


def test_a_selected_cml_needs_a_host_and_a_key():
    assert required_when_selected({}) == {"host": ["Required when platform is cml."],
                                          "api_key": ["Required when platform is cml."]}
    assert required_when_selected({"host": "https://h", "api_key": ""}) == {
        "api_key": ["Required when platform is cml."]}
    assert required_when_selected({"host": "https://h", "api_key": "k"}) == {}


# -- the section's schema --------------------------------------------------------------------------
def test_the_section_loads_into_settings_whose_repr_hides_the_key():
    loaded = CMLSchema().load({"host": "https://ml.example", "api_key": "sekrit-key-0123"})
    settings = CMLSchema.settings_type(**loaded)
    assert isinstance(settings, CMLSettings) and settings.host == "https://ml.example"
    assert (settings.control_plane, settings.shared_host_network) == ("auto", False)
    assert "sekrit-key-0123" not in repr(settings)


@pytest.mark.parametrize("field,value", [
    ("host", "not a url"), ("control_plane", "remote"), ("timeout_seconds", 0.1),
    ("timeout_seconds", 601), ("control_timeout_seconds", 5), ("project_timeout_seconds", 0),
    ("max_requests_per_second", 0), ("colour", "blue"),
])
def test_the_sections_fields_are_checked(field, value):
    with pytest.raises(ValidationError) as info:
        CMLSchema().load({field: value})
    assert field in info.value.messages


# -- the older cai: shape --------------------------------------------------------------------------
def test_a_document_without_a_cai_section_is_left_as_it_is():
    doc = {"workers": {"count": 2}}
    assert map_cai(doc) is doc and doc == {"workers": {"count": 2}}


def test_a_cai_section_selects_cml_unless_the_config_chose_a_platform():
    assert map_cai({"cai": {"host": "https://h"}})["platform"] == "cml"
    assert map_cai({"platform": "local", "cai": {"host": "https://h"}})["platform"] == "local"


def test_cai_fields_fill_in_our_sections_beside_what_they_already_hold():
    doc = map_cai({"cml": {"timeout_seconds": 30}, "workers": {"drain_timeout_seconds": 10},
                   "cai": {"host": "https://h", "api_key": "k", "project_id": "p-1",
                           "runtime_identifier": "rt", "num_workers": 3,
                           "resources": {"cpu": 4, "memory": 16, "num_gpus": 1},
                           "head_resources": {"cpu": 2, "memory": 8}}})
    assert doc["cml"] == {"timeout_seconds": 30, "host": "https://h", "api_key": "k",
                          "project_id": "p-1", "runtime_identifier": "rt"}
    assert doc["workers"] == {"drain_timeout_seconds": 10, "count": 3, "cpu": 4, "memory": 16,
                              "gpus": 1}
    assert doc["head"] == {"cpu": 2, "memory": 8} and "cai" not in doc


def test_a_head_our_section_half_sizes_takes_the_rest_from_the_workers():
    warnings: list[str] = []
    doc = map_cai({"head": {"cpu": 1},
                   "cai": {"resources": {"cpu": 4, "memory": 16}}}, warnings)
    assert doc["head"] == {"cpu": 1, "memory": 16}
    assert warnings == ["cai: head_resources absent: the head uses the worker resources "
                        "(1 CPU, 16 GiB)"]


def test_the_mapping_needs_no_warnings_list():
    doc = map_cai({"cai": {"head_resources": {"num_gpus": 2}}}, None)
    assert doc["head"] == {"cpu": 1.0, "memory": 2.0}  # the workers' defaults


@pytest.mark.parametrize("doc,field", [
    ({"cai": "https://h"}, "cai"),
    ({"cai": {"resources": [4, 16]}}, "cai.resources"),
    ({"cai": {"head_resources": "small"}}, "cai.head_resources"),
    ({"cml": "https://h", "cai": {"host": "https://h"}}, "cml"),
    ({"workers": [1], "cai": {"num_workers": 1}}, "workers"),
])
def test_a_part_that_is_not_a_mapping_is_named(doc, field):
    with pytest.raises(ConfigShapeError) as info:
        map_cai(doc)
    assert info.value.errors == {field: ["Must be a mapping."]}


def test_every_unknown_cai_field_is_named_where_it_was_written():
    with pytest.raises(ConfigShapeError) as info:
        map_cai({"cai": {"host": "https://h", "zone": "eu",
                         "resources": {"cpu": 1, "disk": 10},
                         "head_resources": {"cpu": 1, "memory": 2, "ssd": True}}})
    assert set(info.value.errors) == {"cai.zone", "cai.resources.disk", "cai.head_resources.ssd"}


# -- runtimes offered in a message -----------------------------------------------------------------
def test_python_runtimes_are_offered_first_then_the_rest_in_order():
    assert runtime_choices(["r-img:2", "python3.11-img:1", "a-img:1", "Python3.10:1"]) == (
        "choose one of: Python3.10:1, python3.11-img:1, a-img:1, r-img:2")


def test_a_long_list_of_runtimes_is_cut_and_says_how_many_more():
    available = [f"python-{n}" for n in range(8)]
    assert runtime_choices(available, shown=3) == (
        "choose one of: python-0, python-1, python-2 (and 5 more: GET /api/v2/runtimes)")


def test_a_workspace_without_runtimes_is_said_so():
    assert runtime_choices([]) == "the workspace lists no runtimes (GET /api/v2/runtimes)"

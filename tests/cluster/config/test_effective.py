"""The config as it acts, flat (cluster/config/effective.py): what plans compare with the last
successful run's, so every field that acts is there, secrets say only whether they are set,
and the result is plain JSON data."""
from __future__ import annotations

import json

from cluster.config import parse_config
from cluster.config.effective import effective_config

APP = {"name": "hello", "import_path": "examples.apps.hello:app", "route_prefix": "/hello",
       "runtime_env": {"env_vars": {"APP_MODE": "x"}}}


def flat(tmp_path, **doc):
    return effective_config(parse_config({"state_dir": str(tmp_path / "s"), **doc}, environ={}))


def test_sections_become_dotted_keys_with_their_values(tmp_path):
    out = flat(tmp_path, workers={"count": 3, "cpu": 2}, ray={"version": "2.60.0"})
    assert (out["workers.count"], out["workers.cpu"], out["ray.version"]) == (3, 2.0, "2.60.0")
    assert out["serve.management_api.route_prefix"] == "/"
    assert "workers" not in out and "serve.management_api" not in out  # leaves only


def test_serve_apps_are_flattened_by_their_index(tmp_path):
    out = flat(tmp_path, serve={"applications": [APP, {**APP, "name": "two", "route_prefix": "/2"}]})
    assert out["serve.applications.0.name"] == "hello"
    assert out["serve.applications.1.route_prefix"] == "/2"
    assert out["serve.applications.0.runtime_env.env_vars.APP_MODE"] == "x"
    assert out["serve.applications.0.args"] == {}  # an empty mapping is a value of its own


def test_mappings_of_settings_are_flattened_by_key(tmp_path):
    out = flat(tmp_path, approvals={"operations": {"node_add": "approval"}})
    assert out["approvals.operations.node_add"] == "approval"
    assert out["approvals.operations.node_remove"] == "approval"  # the default, merged


def test_a_secret_says_whether_it_is_set_never_what_it_is(tmp_path):
    with_key = flat(tmp_path, cml={"api_key": "sekrit-key-0123"})
    assert with_key["platform_settings.cml.api_key"] == "(set)"
    assert "sekrit-key-0123" not in json.dumps(with_key)
    assert flat(tmp_path)["platform_settings.cml.api_key"] is None
    other_key = flat(tmp_path, cml={"api_key": "another-key"})
    assert other_key == with_key  # a changed secret is no change a plan can show


def test_where_the_config_came_from_is_not_part_of_it(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "s"), "head": {"gpus": 1}},
                          environ={}, source="/somewhere/cluster.yaml")
    out = effective_config(config)
    assert config.warnings  # head.gpus ignored: said, but not a setting
    assert not {k for k in out if k.split(".")[0] in ("source", "base_dir", "warnings",
                                                        "document")}


def test_the_result_is_plain_json_data(tmp_path):
    out = flat(tmp_path, api={"cors_origins": ["https://ui.example"]})
    assert out["state_dir"] == str((tmp_path / "s").resolve())  # a Path, as text
    assert out["api.cors_origins"] == ["https://ui.example"]  # a tuple, as a list
    assert json.loads(json.dumps(out)) == out


def test_equal_configs_flatten_equal_and_a_changed_field_shows(tmp_path):
    one, same = flat(tmp_path, workers={"count": 2}), flat(tmp_path, workers={"count": 2})
    other = flat(tmp_path, workers={"count": 5})
    assert one == same
    assert {k for k in one if one[k] != other[k]} == {"workers.count"}

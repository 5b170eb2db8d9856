"""What the API's answers leave out (api_server/redaction.py): secrets for every caller, the
control plane's paths for callers without the operator role. Through whole answers:
tests/security/test_disclosure.py."""
from __future__ import annotations

import copy

from marshmallow import Schema

from api_server.redaction import (
    WithoutSecrets,
    command,
    config_change,
    config_name,
    without_secrets,
)
from checkpoints.changes import REDACTED

DEPLOYED = {"name": "greeter", "import_path": "apps.greeter:app", "route_prefix": "/greet",
            "args": {"greeting": "hi", "db": {"password": "pw-123"}},
            "runtime_env": {"env_vars": {"APP_MODE": "fast", "APP_DB_URL": "postgres://u:p@db"},
                            "working_dir": "apps"},
            "deployments": [{"name": "Greeter", "num_replicas": 2,
                             "ray_actor_options": {"runtime_env": {"env_vars": {"APP_X": "1"}}}}]}


# -- secrets, for every caller ---------------------------------------------------------------------
def test_every_env_var_and_builder_arg_keeps_its_name_and_loses_its_value():
    shown = without_secrets(DEPLOYED)
    assert shown["runtime_env"]["env_vars"] == {"APP_MODE": REDACTED, "APP_DB_URL": REDACTED}
    assert shown["args"] == {"greeting": REDACTED, "db": REDACTED}
    nested = shown["deployments"][0]["ray_actor_options"]["runtime_env"]["env_vars"]
    assert nested == {"APP_X": REDACTED}


def test_what_is_no_secret_is_shown_as_it_is():
    shown = without_secrets(DEPLOYED)
    assert {k: shown[k] for k in ("name", "import_path", "route_prefix")} == {
        "name": "greeter", "import_path": "apps.greeter:app", "route_prefix": "/greet"}
    assert shown["runtime_env"]["working_dir"] == "apps"
    assert shown["deployments"][0]["num_replicas"] == 2


def test_settings_named_like_a_secret_are_redacted_anywhere():
    shown = without_secrets({"user_config": {"api_token": "t-1", "model": "small"}})
    assert shown == {"user_config": {"api_token": REDACTED, "model": "small"}}


def test_the_value_given_is_not_changed():
    given = copy.deepcopy(DEPLOYED)
    without_secrets(given)
    assert given == DEPLOYED


def test_args_that_are_not_a_mapping_are_redacted_whole_and_nothing_stays_nothing():
    assert without_secrets({"args": ["--token", "t-1"]}) == {"args": REDACTED}
    assert without_secrets({"args": {}, "env_vars": None}) == {"args": {}, "env_vars": None}


def test_a_field_dumps_its_mapping_without_secrets():
    class Answer(Schema):
        deployed_config = WithoutSecrets(allow_none=True)

    dumped = Answer().dump({"deployed_config": DEPLOYED})["deployed_config"]
    assert dumped == without_secrets(DEPLOYED)
    assert "pw-123" not in str(dumped) and "postgres://" not in str(dumped)
    assert Answer().dump({"deployed_config": None}) == {"deployed_config": None}


# -- the config's changes --------------------------------------------------------------------------
def test_a_change_inside_env_vars_or_args_shows_neither_side():
    change = {"key": "serve.applications.0.runtime_env.env_vars.APP_DB_URL",
              "before": "postgres://old", "after": "postgres://new"}
    assert config_change(change, sees_paths=True) == {**change, "before": REDACTED,
                                                      "after": REDACTED}
    added = {"key": "serve.applications.0.args.secret", "after": "s"}
    assert config_change(added, sees_paths=True) == {**added, "after": REDACTED}


def test_a_change_of_a_path_is_shown_to_an_operator_only():
    for key in ("state_dir", "api.tokens_file", "jobs_config", "approvals.file_dir"):
        change = {"key": key, "before": "/srv/a", "after": "/srv/b"}
        assert config_change(change, sees_paths=True) == change
        assert config_change(change, sees_paths=False) == {"key": key, "before": REDACTED,
                                                           "after": REDACTED}


def test_other_changes_are_shown_to_everyone():
    change = {"key": "workers.count", "before": 2, "after": 3}
    assert config_change(change, sees_paths=False) == change
    named_like_a_path = {"key": "serve.applications.0.route_prefix", "before": "/a",
                         "after": "/b"}
    assert config_change(named_like_a_path, sees_paths=False) == named_like_a_path


# -- the config file's name ------------------------------------------------------------------------
def test_a_viewer_is_told_the_config_files_name_not_where_it_is():
    assert config_name("/srv/deploy/cluster.yaml", sees_paths=True) == "/srv/deploy/cluster.yaml"
    assert config_name("/srv/deploy/cluster.yaml", sees_paths=False) == "cluster.yaml"


def test_a_command_naming_the_config_names_its_file_only_for_a_viewer():
    source = "/srv/my deploy/cluster.yaml"
    text = "deploy_master.py --config '/srv/my deploy/cluster.yaml' --approve teardown"
    assert command(text, source, sees_paths=True) == text
    assert command(text, source, sees_paths=False) == \
        "deploy_master.py --config cluster.yaml --approve teardown"
    assert command(None, source, sees_paths=False) is None
    assert command("", source, sees_paths=False) == ""

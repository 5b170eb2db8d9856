"""What an approver sees of a change: settings as dotted paths, ``before -> after``, secrets
redacted yet sealed (a keyed hash that changes with them), named items keyed by name."""
import pytest

from checkpoints.changes import REDACTED, diff, flatten, redact, seal, secret_path, settings


@pytest.mark.parametrize("path", [
    ("runtime_env", "env_vars", "MODE"),  # any environment variable's value
    ("environment", "PLAIN"),
    ("args", "api_key"), ("args", "API-TOKEN"), ("auth",), ("args", "db", "password"),
    ("args", "private_key_file"), ("tokens",), ("principals",),
    ("args", "config_file"), ("args", "state_dir"),  # the control plane's host paths
])
def test_a_setting_is_secret_by_its_section_or_by_a_word_of_its_name(path):
    assert secret_path(path)


@pytest.mark.parametrize("path", [
    ("args", "greeting"), ("num_replicas",), ("args", "monkey"), ("args", "tokenizer"),
    ("runtime_env", "env_vars"),  # the section itself: its variables are the secrets
    ("deployments", "D", "user_config", "dir"),  # a path word counts only in args
    ("route_prefix",),
])
def test_other_settings_are_shown(path):
    assert not secret_path(path)


def test_settings_flatten_to_dotted_paths_with_named_items_keyed_by_name():
    flat = flatten({"args": {"greeting": "hi", "empty": {}}, "none": [],
                    "deployments": [{"name": "Hello", "num_replicas": 2},
                                    {"name": "World", "max_ongoing_requests": 5}],
                    "hosts": ["a", "b"]})
    assert flat == {("args", "greeting"): "hi", ("deployments", "Hello", "num_replicas"): 2,
                    ("deployments", "World", "max_ongoing_requests"): 5, ("hosts",): ["a", "b"]}


def test_a_secret_is_one_leaf_whatever_is_inside_it():
    assert flatten({"runtime_env": {"env_vars": {"CFG": {"user": "u", "pw": "p"}}}}) == \
        {("runtime_env", "env_vars", "CFG"): {"user": "u", "pw": "p"}}


def test_a_change_is_shown_before_and_after_and_what_did_not_change_is_left_out():
    changes, sealed = diff(
        {"args": {"greeting": "hi", "same": 1}, "num_replicas": 1, "old": True},
        {"args": {"greeting": "hello", "same": 1}, "num_replicas": 2, "new": {"a": [1]}})
    assert changes == {"args.greeting": '"hi" -> "hello"', "new.a": "(none) -> [1]",
                       "num_replicas": "1 -> 2", "old": "true -> (none)"}
    assert sealed == {}
    assert diff({"a": 1}, {"a": 1}) == ({}, {})


def test_named_items_are_compared_by_name_not_by_position():
    before = {"deployments": [{"name": "A", "n": 1}, {"name": "B", "n": 2}]}
    after = {"deployments": [{"name": "B", "n": 3}, {"name": "A", "n": 1}]}
    assert diff(before, after)[0] == {"deployments.B.n": "2 -> 3"}


def test_a_secret_change_says_set_changed_or_removed_and_seals_the_new_value():
    changes, sealed = diff(
        {"runtime_env": {"env_vars": {"OLD": "old-secret", "TOKEN": "tok-1", "SAME": "s"}}},
        {"runtime_env": {"env_vars": {"NEW": "new-secret", "TOKEN": "tok-2", "SAME": "s"}},
         "args": {"api_key": "key-secret"}})
    assert changes == {"args.api_key": "set", "runtime_env.env_vars.NEW": "set",
                       "runtime_env.env_vars.OLD": "removed",
                       "runtime_env.env_vars.TOKEN": "changed"}
    assert sealed == {"args.api_key": "key-secret", "runtime_env.env_vars.NEW": "new-secret",
                      "runtime_env.env_vars.OLD": None, "runtime_env.env_vars.TOKEN": "tok-2"}
    assert "secret" not in str(changes) and "tok-" not in str(changes)


def test_a_new_things_settings_are_shown_with_secrets_redacted_and_sealed():
    shown, sealed = settings({"args": {"greeting": "hi", "password": "hunter2"},
                              "runtime_env": {"env_vars": {"MODE": "prod"}}})
    assert shown == {"args.greeting": "hi", "args.password": REDACTED,
                     "runtime_env.env_vars.MODE": REDACTED}
    assert sealed == {"args.password": "hunter2", "runtime_env.env_vars.MODE": "prod"}


def test_a_whole_config_is_shown_with_every_secret_redacted_at_any_depth():
    config = {"name": "app", "args": {"greeting": "hi", "db": {"password": "p", "host": "h"},
                                      "state_dir": "/srv/state"},
              "runtime_env": {"env_vars": {"A": "1"}},
              "deployments": [{"name": "D", "user_config": {"token": "t", "n": 1}}],
              "backends": [{"url": "u", "api_key": "k"}, "plain"]}
    assert redact(config) == {
        "name": "app", "args": {"greeting": "hi", "db": {"password": REDACTED, "host": "h"},
                                "state_dir": REDACTED},
        "runtime_env": {"env_vars": {"A": REDACTED}},
        "deployments": [{"name": "D", "user_config": {"token": REDACTED, "n": 1}}],
        "backends": [{"url": "u", "api_key": REDACTED}, "plain"]}
    assert config["args"]["db"]["password"] == "p"  # the config itself is left as it was


def test_a_seal_changes_with_the_values_and_the_key_and_is_none_without_secrets():
    key, other_key = b"k" * 32, b"o" * 32
    one = seal(key, {"args.api_key": "k1"})
    assert one == seal(key, {"args.api_key": "k1"}) and len(one) == 32
    assert one != seal(key, {"args.api_key": "k2"})
    assert one != seal(other_key, {"args.api_key": "k1"})
    assert one != seal(key, {"args.token": "k1"})  # which setting holds it counts too
    assert "k1" not in one
    assert seal(key, {}) is None


def test_a_secret_inside_a_list_of_unnamed_items_is_redacted_and_sealed():
    """A list of settings that are not named items is compared by position, so a secret in
    one of its items is found (it used to be shown whole, password and all)."""
    changes, sealed = diff({}, {"args": {"users": [{"user": "a", "password": "hunter2"}],
                                         "tags": ["x", "y"]}})
    assert changes == {"args.tags": '(none) -> ["x","y"]', "args.users.0.password": "set",
                       "args.users.0.user": '(none) -> "a"'}
    assert sealed == {"args.users.0.password": "hunter2"}
    shown, _ = settings({"args": {"users": [{"user": "a", "password": "hunter2"}]}})
    assert "hunter2" not in str(shown)

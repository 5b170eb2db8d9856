"""What the API may deploy (cluster/serve_policy.py), checked on the policy itself: each
refusal is an Invalid naming the field at fault. Through the HTTP API (and that the code is
never imported): tests/security/test_user_code.py."""
from __future__ import annotations

import pytest

from cluster.config import parse_config
from cluster.serve_policy import check_actor_options, check_import_path, check_runtime_env
from core.errors import Invalid


def policy(**serve):
    return parse_config({"serve": serve}, environ={}).serve


def refused(check, *args, **kwargs) -> Invalid:
    with pytest.raises(Invalid) as info:
        check(*args, **kwargs)
    return info.value


# -- import paths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("import_path", ["myapps:app", "myapps.serve:app", "myapps.a.b:build",
                                         "other.pkg:app"])
def test_an_import_path_in_an_allowed_package_passes(import_path):
    check_import_path(import_path, ("myapps", "other.pkg"))


@pytest.mark.parametrize("import_path", ["myappsx:app", "myapps_evil.mod:app", "other:app",
                                         "other.pkgx:app", "subprocess:run"])
def test_a_prefix_allows_its_package_in_whole_names_only(import_path):
    error = refused(check_import_path, import_path, ("myapps", "other.pkg"))
    assert error.field == "import_path"
    assert repr(import_path.split(":")[0]) in str(error) and "myapps, other.pkg" in str(error)


def test_with_no_allowed_prefix_nothing_is_deployable_and_the_setting_is_named():
    error = refused(check_import_path, "myapps:app", ())
    assert "none (set serve.allowed_import_prefixes)" in str(error)


# -- runtime_env -----------------------------------------------------------------------------------
def test_a_runtime_env_of_allowed_keys_and_variables_passes(tmp_path):
    (tmp_path / "apps").mkdir()
    check_runtime_env({"env_vars": {"APP_MODE": "fast", "APP_LEVEL": ""},
                       "working_dir": "apps"}, policy(), tmp_path)


def test_a_runtime_env_key_outside_the_allowed_ones_is_named(tmp_path):
    error = refused(check_runtime_env, {"pip": ["requests"]}, policy(), tmp_path)
    assert error.field == "runtime_env.pip" and "env_vars, working_dir" in str(error)
    allowed = policy(allowed_runtime_env_keys=["pip"])
    check_runtime_env({"pip": ["requests"]}, allowed, tmp_path)
    assert refused(check_runtime_env, {"env_vars": {}}, allowed, tmp_path).field == \
        "runtime_env.env_vars"


def test_the_field_prefix_is_the_callers(tmp_path):
    error = refused(check_runtime_env, {"conda": {}}, policy(), tmp_path,
                    field="deployments.0.runtime_env")
    assert error.field == "deployments.0.runtime_env.conda"


@pytest.mark.parametrize("env_vars,field", [
    (["APP_X=1"], "runtime_env.env_vars"),
    ({"1BAD": "x"}, "runtime_env.env_vars"),
    ({"APP-X": "x"}, "runtime_env.env_vars"),
    ({"HOME": "/tmp"}, "runtime_env.env_vars.HOME"),
    ({"APP_X": 1}, "runtime_env.env_vars.APP_X"),
    ({"APP_X": "x" * 8193}, "runtime_env.env_vars.APP_X"),
])
def test_env_vars_are_names_the_policy_allows_with_string_values(tmp_path, env_vars, field):
    assert refused(check_runtime_env, {"env_vars": env_vars}, policy(), tmp_path).field == field


def test_a_value_of_the_largest_size_allowed_passes(tmp_path):
    check_runtime_env({"env_vars": {"APP_X": "x" * 8192}}, policy(), tmp_path)


def test_the_allowed_variables_are_shell_patterns_matched_case_sensitively(tmp_path):
    allowed = policy(allowed_env_vars=["MY_?", "TZ"])
    check_runtime_env({"env_vars": {"MY_A": "1", "TZ": "UTC"}}, allowed, tmp_path)
    assert refused(check_runtime_env, {"env_vars": {"MY_AB": "1"}}, allowed, tmp_path).field == \
        "runtime_env.env_vars.MY_AB"
    assert refused(check_runtime_env, {"env_vars": {"tz": "UTC"}}, allowed, tmp_path).field == \
        "runtime_env.env_vars.tz"


@pytest.mark.parametrize("name", ["LD_PRELOAD", "DYLD_INSERT_LIBRARIES", "PYTHONPATH",
                                  "PYTHONSTARTUP", "BASH_ENV", "ENV", "NODE_OPTIONS", "PATH",
                                  "RAY_AUTH_TOKEN", "RAY_ADDRESS", "GCONV_PATH", "PERL5LIB"])
def test_variables_that_change_what_code_runs_are_refused_whatever_the_patterns(tmp_path, name):
    error = refused(check_runtime_env, {"env_vars": {name: "x"}}, policy(allowed_env_vars=["*"]),
                    tmp_path)
    assert "changes what code the replica loads or runs" in str(error)


def test_variables_that_only_start_like_a_refused_one_are_up_to_the_patterns(tmp_path):
    # ENV and PATH are refused as whole names, not as prefixes
    check_runtime_env({"env_vars": {"ENVIRONMENT": "prod", "PATHFINDER": "1"}},
                      policy(allowed_env_vars=["*"]), tmp_path)


@pytest.mark.parametrize("working_dir", ["/etc", "..", "apps/../..", "s3://bucket/code.zip",
                                         "missing", "file.txt"])
def test_a_working_dir_is_a_directory_inside_the_project(tmp_path, working_dir):
    project = tmp_path / "project"
    (project / "apps").mkdir(parents=True)
    (project / "file.txt").write_text("x")
    error = refused(check_runtime_env, {"working_dir": working_dir}, policy(), project)
    assert error.field == "runtime_env.working_dir"


def test_a_working_dir_may_name_the_project_itself_or_a_directory_in_it(tmp_path):
    (tmp_path / "apps" / "one").mkdir(parents=True)
    for working_dir in (".", "apps/one", "apps/../apps", str(tmp_path / "apps")):
        check_runtime_env({"working_dir": working_dir}, policy(), tmp_path)


def test_a_link_out_of_the_project_is_outside_it(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "escape").symlink_to(outside)
    assert refused(check_runtime_env, {"working_dir": "escape"}, policy(), project).field == \
        "runtime_env.working_dir"


# -- actor options ---------------------------------------------------------------------------------
def test_actor_options_within_their_bounds_pass():
    check_actor_options({"num_cpus": 0.5, "num_gpus": 0, "memory": 2 ** 30,
                         "object_store_memory": 0, "resources": {"accel": 2}})


@pytest.mark.parametrize("options,field", [
    ({"num_cpus": -1}, "ray_actor_options.num_cpus"),
    ({"num_cpus": 1025}, "ray_actor_options.num_cpus"),
    ({"num_gpus": 65}, "ray_actor_options.num_gpus"),
    ({"num_cpus": True}, "ray_actor_options.num_cpus"),
    ({"num_cpus": "1"}, "ray_actor_options.num_cpus"),
    ({"memory": 5.0 * 1024 ** 4}, "ray_actor_options.memory"),
    ({"resources": ["accel"]}, "ray_actor_options.resources"),
    ({"resources": {"accel": 1e7}}, "ray_actor_options.resources.accel"),
    ({"runtime_env": {"pip": ["x"]}}, "ray_actor_options.runtime_env"),
    ({"scheduling_strategy": "SPREAD"}, "ray_actor_options.scheduling_strategy"),
])
def test_actor_options_are_bounded_resources_only(options, field):
    assert refused(check_actor_options, options).field == field


def test_an_unknown_actor_option_says_which_are_allowed():
    error = refused(check_actor_options, {"max_restarts": 3}, field="deployments.0.opts")
    assert error.field == "deployments.0.opts.max_restarts"
    assert "num_cpus, num_gpus, memory, object_store_memory, resources" in str(error)

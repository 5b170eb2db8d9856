from pathlib import Path

import pytest

from cluster.config import ConfigError, load_config, parse_config
from cluster.jobs_config import load_jobs_config


def test_defaults_and_types():
    config = parse_config({"workers": {"count": 3, "cpu": 2}}, environ={})
    assert config.workers.count == 3 and config.workers.cpu == 2.0
    assert config.head.gpus == 0 and config.platform == "local"
    assert config.ray.auth == "token"


def test_every_bad_field_is_listed_at_once():
    doc = {"workers": {"count": -1, "bogus": 1}, "head": {"cpu": "x"}, "colour": "blue",
           "serve": {"applications": [{"name": "a", "import_path": "no_colon",
                                       "route_prefix": "hello"}]},
           "ray": {"port": 80}}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, environ={})
    assert set(info.value.errors) == {
        "workers.count", "workers.bogus", "head.cpu", "colour", "ray.port",
        "serve.applications.0.import_path", "serve.applications.0.route_prefix"}
    assert "7 field errors" in str(info.value)


def test_environment_overrides_and_their_errors_name_the_variable():
    config = parse_config({}, environ={"RAY_NUM_WORKERS": "5", "RAY_WORKER_GPUS": "1",
                                       "FORCE_REBUILD": "true", "CML_HOST": "https://ml.example.com",
                                       "CML_API_KEY": "k", "RUNTIME_IDENTIFIER": "img:1"})
    assert (config.workers.count, config.workers.gpus, config.force_rebuild) == (5, 1, True)
    cml = config.platform_settings["cml"]
    assert cml.host == "https://ml.example.com" and cml.runtime_identifier == "img:1"
    with pytest.raises(ConfigError) as info:
        parse_config({}, environ={"RAY_NUM_WORKERS": "many"})
    assert "workers.count (from RAY_NUM_WORKERS)" in info.value.errors


@pytest.mark.parametrize("cml,environ,expected", [
    ({}, {"CDSW_PROJECT_ID": "cdsw-1"}, ("cdsw-1", "CDSW_PROJECT_ID")),
    ({}, {"CDSW_PROJECT_ID": "cdsw-1", "CML_PROJECT_ID": "cml-1"}, ("cml-1", "CML_PROJECT_ID")),
    ({"project_id": "cfg-1"}, {"CDSW_PROJECT_ID": "cdsw-1", "CML_PROJECT_ID": "cml-1"},
     ("cfg-1", None)),
    ({"project_name": "named"}, {"CDSW_PROJECT_ID": "cdsw-1"}, (None, None)),
    ({"project_name": "named"}, {"CML_PROJECT_ID": "cml-1"}, ("cml-1", "CML_PROJECT_ID")),
    ({}, {"CML_PROJECT_ID": "  ", "CDSW_PROJECT_ID": ""}, (None, None)),
])
def test_project_id_precedence_config_then_cml_then_cdsw(cml, environ, expected):
    from cluster.config.legacy import apply_env
    doc = {"platform": "cml", "cml": {"host": "https://h", "api_key": "k", **cml}}
    config = parse_config(doc, environ=environ)
    origins = apply_env({"cml": dict(doc["cml"])}, environ)
    assert (config.platform_settings["cml"].project_id, origins.get("cml.project_id")) == expected


def test_cai_project_id_is_a_config_value_and_wins_over_the_environment():
    config = parse_config({"cai": {"host": "https://h", "api_key": "k", "project_id": "cai-1"}},
                          environ={"CML_PROJECT_ID": "cml-1", "CDSW_PROJECT_ID": "cdsw-1"})
    assert config.platform_settings["cml"].project_id == "cai-1"


def test_api_key_never_in_repr():
    config = parse_config({"cml": {"api_key": "sekrit-key"}}, environ={})
    assert "sekrit-key" not in repr(config)


def test_head_gpus_are_zero_with_a_warning():
    config = parse_config({"head": {"gpus": 2}}, environ={})
    assert config.head.gpus == 0
    assert any("head.gpus" in w for w in config.warnings)


def test_legacy_cai_section_maps_onto_ours():
    config = parse_config({"cai": {"host": "https://ml.example.com", "api_key": "k",
                                   "project_id": "p-1", "num_workers": 3,
                                   "resources": {"cpu": 4, "memory": 16, "num_gpus": 1},
                                   "head_resources": {"cpu": 2, "memory": 8},
                                   "runtime_identifier": "rt"},
                           "ray": {"port": 6380, "dashboard_port": 8266}}, environ={})
    assert config.platform == "cml" and config.platform_settings["cml"].project_id == "p-1"
    workers = config.workers
    assert (workers.count, workers.cpu, workers.memory, workers.gpus) == (3, 4, 16, 1)
    assert (config.head.cpu, config.head.memory) == (2, 8)
    assert (config.ray.port, config.ray.dashboard_port) == (6380, 8266)


def test_cai_defaults_follow_the_seed_one_worker_and_a_head_sized_as_a_worker():
    config = parse_config({"cai": {"host": "https://ml.example.com", "api_key": "k",
                                   "resources": {"cpu": 2, "memory": 8, "num_gpus": 1}}},
                          environ={})
    assert (config.workers.count, config.workers.cpu, config.workers.memory) == (1, 2, 8)
    assert (config.head.cpu, config.head.memory, config.head.gpus) == (2, 8, 0)
    assert config.warnings == ("cai: head_resources absent: the head uses the worker "
                               "resources (2 CPU, 8 GiB)",)
    # without resources either: both get the defaults, and the warning says which
    bare = parse_config({"cai": {"host": "https://h", "api_key": "k"}}, environ={})
    assert (bare.head.cpu, bare.head.memory) == (bare.workers.cpu, bare.workers.memory) == (1, 2)
    assert bare.warnings == ("cai: head_resources absent: the head uses the worker resources "
                             "(1 CPU, 2 GiB)",)
    assert parse_config({"cai": {"host": "https://h", "api_key": "k"}},
                        environ={"RAY_NUM_WORKERS": "4"}).workers.count == 4


def test_cai_with_head_resources_or_a_head_section_has_no_warning():
    sized = parse_config({"cai": {"host": "https://h", "api_key": "k", "num_workers": 0,
                                  "resources": {"cpu": 4, "memory": 16},
                                  "head_resources": {"cpu": 1, "memory": 2}}}, environ={})
    assert (sized.workers.count, sized.head.cpu, sized.head.memory) == (0, 1, 2)
    assert sized.warnings == ()
    ours = parse_config({"cai": {"host": "https://h", "api_key": "k",
                                 "resources": {"cpu": 4, "memory": 16}},
                         "head": {"cpu": 1, "memory": 3}}, environ={})
    assert (ours.head.cpu, ours.head.memory, ours.warnings) == (1, 3, ())


def test_cai_head_gpus_are_accepted_forced_to_0_and_the_ignored_value_is_named():
    """Seed 001: the head always gets 0 GPUs, whatever head_resources.num_gpus says."""
    config = parse_config({"cai": {"host": "https://h", "api_key": "k",
                                   "resources": {"cpu": 4, "memory": 16, "num_gpus": 2},
                                   "head_resources": {"cpu": 2, "memory": 8, "num_gpus": 1}}},
                          environ={})
    assert (config.head.cpu, config.head.memory, config.head.gpus) == (2, 8, 0)
    assert config.workers.gpus == 2
    assert config.warnings == ("cai: head_resources.num_gpus=1 ignored: the head always gets "
                               "0 GPUs",)
    # only GPUs given: the head is sized as a worker, as when head_resources is absent
    gpus_only = parse_config({"cai": {"host": "https://h", "api_key": "k",
                                      "resources": {"cpu": 4, "memory": 16},
                                      "head_resources": {"num_gpus": 1}}}, environ={})
    assert (gpus_only.head.cpu, gpus_only.head.memory, gpus_only.head.gpus) == (4, 16, 0)
    assert len(gpus_only.warnings) == 2 and "num_gpus=1 ignored" in gpus_only.warnings[0]


def test_a_bad_cai_worker_size_is_one_field_error_not_two():
    with pytest.raises(ConfigError) as info:
        parse_config({"cai": {"host": "https://h", "api_key": "k",
                              "resources": {"cpu": "lots"}, "head_resources": None}}, environ={})
    assert list(info.value.errors) == ["workers.cpu"]
    with pytest.raises(ConfigError) as info:
        parse_config({"cai": {"host": "https://h", "api_key": "k", "resources": {"cpu": "lots"}}},
                     environ={})
    assert list(info.value.errors) == ["workers.cpu"]
    with pytest.raises(ConfigError) as info:
        parse_config({"cai": {"host": "https://h", "api_key": "k", "resources": [2, 8]}},
                     environ={})
    assert list(info.value.errors) == ["cai.resources"]


def test_legacy_cai_unknown_keys_are_errors():
    with pytest.raises(ConfigError) as info:
        parse_config({"cai": {"host": "https://h", "api_key": "k", "nope": 1}}, environ={})
    assert "cai.nope" in info.value.errors


def test_legacy_ray_cluster_section():
    config = parse_config({"ray_cluster": {"num_workers": 4, "head_cpu": 2, "head_memory": 4,
                                           "worker_cpu": 3, "worker_memory": 6, "worker_gpus": 0}},
                          environ={})
    assert (config.workers.count, config.workers.cpu, config.head.cpu) == (4, 3, 2)


def test_cml_platform_needs_host_and_key():
    with pytest.raises(ConfigError) as info:
        parse_config({"platform": "cml"}, environ={})
    assert {"cml.host", "cml.api_key"} <= set(info.value.errors)


def test_hundreds_of_workers_may_be_configured():
    assert parse_config({"workers": {"count": 256}}, environ={}).workers.count == 256
    with pytest.raises(ConfigError):
        parse_config({"workers": {"count": 1001}}, environ={})


def test_cml_request_rate_has_a_default_and_must_be_positive():
    assert parse_config({}, environ={}).platform_settings["cml"].max_requests_per_second == 50
    config = parse_config({"cml": {"max_requests_per_second": 7.5}}, environ={})
    assert config.platform_settings["cml"].max_requests_per_second == 7.5
    for bad in (0, -1, "fast"):
        with pytest.raises(ConfigError) as info:
            parse_config({"cml": {"max_requests_per_second": bad}}, environ={})
        assert "cml.max_requests_per_second" in info.value.errors


def test_duplicate_app_names_and_prefixes():
    app = {"name": "a", "import_path": "m:app", "route_prefix": "/a"}
    with pytest.raises(ConfigError) as info:
        parse_config({"serve": {"applications": [app, dict(app)]}}, environ={})
    assert "serve.applications" in info.value.errors


def test_state_dir_override_and_yaml_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("workers: {count: 1}\n")
    config = load_config(path, environ={}, state_dir_override=str(tmp_path / "s"))
    assert config.state_dir == (tmp_path / "s").resolve()
    path.write_text("workers: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "(yaml)" in info.value.errors
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize("content,expected", [
    (None, "is a directory"), (b"workers: {count: \xff}\n", "not UTF-8")])
def test_unreadable_config_files_are_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert expected in str(info.value)


def test_platform_sections_come_from_the_registry():
    from cluster.config.schema import ConfigSchema
    from cluster.platforms import REGISTRY
    for platform in REGISTRY.values():
        if platform.settings_section:
            assert platform.settings_section in ConfigSchema().fields
    with pytest.raises(ConfigError) as info:
        parse_config({"platform": "nowhere"}, environ={})
    assert "platform" in info.value.errors


def test_jobs_config_orders_parents_first(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n"
                    "  - {name: c, script: c.py, parent_job_key: b}\n"
                    "  - {name: a, script: a.py}\n"
                    "  - {name: b, script: b.py, parent_job_key: a}\n")
    assert [j["name"] for j in load_jobs_config(path)] == ["a", "b", "c"]
    path.write_text("jobs:\n  - {name: a, script: a.py, parent_job_key: zz}\n")
    with pytest.raises(ConfigError):
        load_jobs_config(path)


def test_shipped_configs_are_valid():
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "examples" / "cluster.local.yaml", environ={})
    assert config.workers.count == 2 and config.serve.applications[0].name == "hello"
    assert [j["name"] for j in load_jobs_config(root / "jobs_config.yaml")] == [
        "git_sync", "setup_environment", "launch_ray_cluster"]
    cml = load_config(root / "examples" / "cluster.cml.yaml",
                      environ={"CML_HOST": "https://ml.example.com", "CML_API_KEY": "k"})
    assert cml.platform == "cml" and cml.platform_settings["cml"].api_key == "k"
    assert cml.head.gpus == 0


def test_approval_policy_per_gate_and_its_errors():
    config = parse_config({"approvals": {"policy": {"teardown": {"min_approvals": 2,
                                                                 "exclude_requester": True}}}},
                          environ={})
    policy = config.approvals.policy["teardown"]
    assert (policy.min_approvals, policy.distinct, policy.exclude_requester, policy.roles) == (
        2, True, True, ("approver",))
    with pytest.raises(ConfigError) as e:
        parse_config({"approvals": {"policy": {"nope": {}, "teardown": {"min_approvals": 0}}}},
                     environ={})
    assert "approvals.policy" in str(e.value) and "min_approvals" in str(e.value)


def test_monitoring_is_off_by_default_and_checked():
    assert parse_config({}, environ={}).monitoring.enabled is False
    with pytest.raises(ConfigError) as e:
        parse_config({"monitoring": {"enabled": True, "retention": "forever",
                                     "api_targets": ["http://x"]}}, environ={})
    assert "monitoring.retention" in str(e.value) and "monitoring.api_targets" in str(e.value)

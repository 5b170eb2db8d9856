"""The desired state a client sends a control plane (cluster/config/desired.py): what it
holds, how its digests tell the same cluster apart from another, and how the control plane
applies it over its own config without giving up what is the control plane's to say."""
from __future__ import annotations

import pytest
import yaml

from cluster.config import ConfigError, parse_config
from cluster.config.desired import (
    DesiredStateInvalid,
    apply_desired,
    desired_state,
    digest,
    state_digest,
)

JOBS = "jobs:\n  - {name: a, script: jobs/git_sync.py}\n"


def config(tmp_path, environ=None, jobs: str = JOBS, **doc):
    jobs_path = tmp_path / "jobs.yaml"
    jobs_path.write_text(jobs)
    base = {"cluster_name": "rd", "state_dir": str(tmp_path / "state"),
            "project_dir": str(tmp_path), "jobs_config": str(jobs_path)}
    return parse_config({**base, **doc}, environ=environ or {})


def control_plane(tmp_path, **doc):
    """The control plane's own config: its approval policy, its API, its scrape targets."""
    (tmp_path / "cp").mkdir(exist_ok=True)
    return config(tmp_path / "cp", **{
        "approvals": {"required": ["worker_launch"], "forbid_self_approval": True},
        "api": {"port": 9191},
        "monitoring": {"api_targets": ["cp.example:8080"], "api_token_file": "/etc/viewer"},
        **doc})


# -- what a client sends ---------------------------------------------------------------------------
def test_the_desired_state_holds_the_cluster_sections_and_the_jobs_not_the_rest(tmp_path):
    client = config(tmp_path, workers={"count": 3}, serve={"applications": []},
                    approvals={"forbid_self_approval": True}, api={"port": 9000},
                    cml={"api_key": "sekrit-key-123"})
    desired = desired_state(client)
    assert (desired["cluster_name"], desired["platform"]) == ("rd", "local")
    assert set(desired["config"]) == {"ray", "head", "workers", "serve", "monitoring",
                                      "force_rebuild"}
    assert desired["config"]["workers"] == {"count": 3} and desired["config"]["head"] == {}
    assert desired["jobs"] == yaml.safe_load(JOBS)
    assert "sekrit-key-123" not in str(desired)


def test_the_desired_state_carries_the_environment_overrides_the_client_applied(tmp_path):
    client = config(tmp_path, environ={"RAY_NUM_WORKERS": "5", "FORCE_REBUILD": "true"})
    sent = desired_state(client)["config"]
    assert (sent["workers"], sent["force_rebuild"]) == ({"count": "5"}, "true")


def test_a_section_the_client_leaves_out_is_sent_empty_so_its_defaults_count(tmp_path):
    """A client whose config says nothing of workers asks for the default (2), not for
    whatever the control plane's own config says."""
    from cluster.config.desired import apply_desired
    for side in ("server", "client"):
        (tmp_path / side).mkdir()
    server = config(tmp_path / "server", workers={"count": 5})
    client = config(tmp_path / "client")
    applied = apply_desired(server, desired_state(client), tmp_path / "jobs.yaml")
    assert applied.workers.count == 2 and desired_state(client)["config"]["force_rebuild"] is False


def test_the_desired_state_is_a_copy_the_config_does_not_share(tmp_path):
    client = config(tmp_path, workers={"count": 3})
    desired_state(client)["config"]["workers"]["count"] = 99
    assert desired_state(client)["config"]["workers"]["count"] == 3


def test_an_unreadable_jobs_file_is_a_config_error_naming_it(tmp_path):
    client = config(tmp_path)
    client.jobs_config.write_text("jobs: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        desired_state(client)
    assert list(info.value.errors) == ["(file)"] and str(client.jobs_config) in str(info.value)


# -- digests ---------------------------------------------------------------------------------------
def test_the_digest_of_a_desired_state_ignores_key_order_and_sees_every_value():
    one = {"cluster_name": "rd", "config": {"workers": {"count": 2, "cpu": 1}}, "jobs": {}}
    reordered = {"jobs": {}, "config": {"workers": {"cpu": 1, "count": 2}}, "cluster_name": "rd"}
    assert digest(one) == digest(reordered)
    assert digest(one) != digest({**one, "config": {"workers": {"count": 3, "cpu": 1}}})
    assert len(digest(one)) == 16


def test_the_state_digest_is_the_same_however_the_same_cluster_was_written(tmp_path):
    from_file = config(tmp_path, workers={"count": 2, "cpu": 2})
    from_env = config(tmp_path, environ={"RAY_NUM_WORKERS": "2"}, workers={"cpu": 2.0})
    legacy = config(tmp_path, ray_cluster={"num_workers": 2, "worker_cpu": 2})
    assert state_digest(from_file) == state_digest(from_env) == state_digest(legacy)
    assert from_env.document["workers"]["count"] == "2"  # as the environment gave it


def test_the_state_digest_changes_with_the_cluster_and_with_its_jobs(tmp_path):
    two = state_digest(config(tmp_path, workers={"count": 2}))
    assert two == state_digest(config(tmp_path, workers={"count": 2}))
    assert two != state_digest(config(tmp_path, workers={"count": 3}))
    # the jobs file is read when the digest is taken: the same config, other jobs
    other_jobs = config(tmp_path, jobs=JOBS.replace("name: a", "name: b"), workers={"count": 2})
    assert state_digest(other_jobs) != two


def test_the_state_digest_does_not_depend_on_where_the_jobs_file_is(tmp_path):
    here = config(tmp_path)
    moved = tmp_path / "elsewhere" / "jobs.yaml"
    moved.parent.mkdir()
    moved.write_text(JOBS)
    there = parse_config({**here.document, "jobs_config": str(moved)}, environ={})
    assert state_digest(here) == state_digest(there)


# -- applying it on a control plane ----------------------------------------------------------------
def test_applying_replaces_the_cluster_sections_and_keeps_the_control_planes_own(tmp_path):
    plane = control_plane(tmp_path, workers={"count": 1})
    client = config(tmp_path, workers={"count": 4, "cpu": 2}, ray={"version": "9.9.9"},
                    approvals={"required": []}, api={"port": 1111})
    jobs_path = tmp_path / "runs" / "r1" / "jobs.yaml"
    applied = apply_desired(plane, desired_state(client), jobs_path)
    assert (applied.workers.count, applied.workers.cpu, applied.ray.version) == (4, 2, "9.9.9")
    assert applied.approvals == plane.approvals and applied.api == plane.api
    assert applied.state_dir == plane.state_dir and applied.source == plane.source


def test_applying_writes_the_jobs_where_it_is_told_and_the_config_points_there(tmp_path):
    plane = control_plane(tmp_path)
    client = config(tmp_path, jobs="jobs:\n  - {name: z, script: jobs/git_sync.py}\n")
    jobs_path = tmp_path / "runs" / "r1" / "jobs.yaml"
    applied = apply_desired(plane, desired_state(client), jobs_path)
    assert applied.jobs_config == jobs_path.resolve()
    assert yaml.safe_load(jobs_path.read_text()) == {"jobs": [{"name": "z",
                                                               "script": "jobs/git_sync.py"}]}
    assert not jobs_path.with_suffix(".tmp").exists()
    assert plane.jobs_config != applied.jobs_config  # the control plane's config is untouched


def test_what_the_control_planes_prometheus_scrapes_stays_its_own(tmp_path):
    plane = control_plane(tmp_path)
    client = config(tmp_path, monitoring={"enabled": True, "api_targets": ["evil.example:80"],
                                          "api_token_file": "/home/client/token"})
    applied = apply_desired(plane, desired_state(client), tmp_path / "jobs-applied.yaml")
    assert applied.monitoring.enabled is True  # the client's to say
    assert applied.monitoring.api_targets == ("cp.example:8080",)
    assert applied.monitoring.api_token_file == "/etc/viewer"


def test_scrape_settings_the_control_plane_never_set_are_not_taken_from_the_client(tmp_path):
    plane = control_plane(tmp_path, monitoring={"enabled": False})
    client = config(tmp_path, monitoring={"enabled": True, "api_targets": ["evil.example:80"]})
    applied = apply_desired(plane, desired_state(client), tmp_path / "jobs-applied.yaml")
    assert applied.monitoring.enabled is True and applied.monitoring.api_targets == ()


@pytest.mark.parametrize("key,value,says", [
    ("cluster_name", "another", "cluster names differ"),
    ("platform", "cml", "platforms differ"),
])
def test_a_desired_state_for_another_cluster_or_platform_is_refused(tmp_path, key, value, says):
    plane = control_plane(tmp_path)
    desired = {**desired_state(config(tmp_path)), key: value}
    jobs_path = tmp_path / "jobs-applied.yaml"
    with pytest.raises(DesiredStateInvalid) as info:
        apply_desired(plane, desired, jobs_path)
    assert says in str(info.value) and repr(value) in str(info.value)
    assert info.value.field == "desired" and not jobs_path.exists()


def test_sections_that_are_the_control_planes_to_say_are_refused(tmp_path):
    plane = control_plane(tmp_path)
    desired = desired_state(config(tmp_path))
    desired["config"] = {**desired["config"], "approvals": {"required": []}, "api": {}}
    with pytest.raises(DesiredStateInvalid) as info:
        apply_desired(plane, desired, tmp_path / "jobs-applied.yaml")
    assert "not sections a client sets: api, approvals" in str(info.value)


def test_an_invalid_desired_section_names_its_fields_under_desired(tmp_path):
    plane = control_plane(tmp_path)
    desired = desired_state(config(tmp_path))
    desired["config"] = {"workers": {"count": -1}, "head": {"cpu": "lots"}}
    with pytest.raises(DesiredStateInvalid) as info:
        apply_desired(plane, desired, tmp_path / "jobs-applied.yaml")
    assert set(info.value.errors) == {"desired.workers.count", "desired.head.cpu"}


def test_the_control_planes_environment_does_not_override_what_the_client_asked(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("RAY_NUM_WORKERS", "7")  # the server's own environment
    plane = control_plane(tmp_path)
    client = config(tmp_path, workers={"count": 2})
    assert apply_desired(plane, desired_state(client), tmp_path / "j.yaml").workers.count == 2


def test_a_client_and_the_control_plane_it_asked_converge_to_the_same_cluster(tmp_path):
    """What the client asks is what a run of the applied config converges to: the cluster
    sections of both, flattened, are the same."""
    from cluster.config.effective import effective_config
    plane = control_plane(tmp_path)
    client = config(tmp_path, workers={"count": 3, "memory": 4}, head={"cpu": 2},
                    serve={"applications": [{"name": "hello", "route_prefix": "/hello",
                                             "import_path": "examples.apps.hello:app"}]})
    applied = apply_desired(plane, desired_state(client), tmp_path / "j.yaml")

    def cluster_part(c):
        return {k: v for k, v in effective_config(c).items()
                if k.split(".")[0] in ("ray", "head", "workers", "serve", "force_rebuild")}
    assert cluster_part(applied) == cluster_part(client)

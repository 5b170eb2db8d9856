"""jobs_config.yaml: our list shape and the seed tool's mapping shape load alike."""
from __future__ import annotations

import pytest

from cluster.config import ConfigError
from cluster.jobs_config import load_jobs_config

SEED = """\
jobs:
  git_repo_sync:
    name: "Git Repo Sync"
    script: "scripts/git_sync.py"
    cpu: 2
    memory: 4
    timeout: 600
  create_env:
    name: "Create Python Environment"
    script: "scripts/setup_environment.py"
    parent_job_key: git_repo_sync
    cpu: 4
    memory: 8
    timeout: 1800
"""


def load(tmp_path, text: str) -> list[dict]:
    path = tmp_path / "jobs_config.yaml"
    path.write_text(text)
    return load_jobs_config(path)


def errors_of(tmp_path, text: str) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_the_seed_mapping_shape_loads_with_keys_as_parents(tmp_path):
    jobs = load(tmp_path, SEED)
    assert [(j["key"], j["name"], j["parent"]) for j in jobs] == [
        ("git_repo_sync", "Git Repo Sync", None),
        ("create_env", "Create Python Environment", "Git Repo Sync")]
    assert (jobs[1]["cpu"], jobs[1]["memory"], jobs[1]["timeout"]) == (4.0, 8.0, 1800)
    assert jobs[0]["arguments"] == "" and jobs[0]["environment"] == {}


def test_the_seed_shape_runs_parents_first_whatever_the_file_order(tmp_path):
    jobs = load(tmp_path, "jobs:\n"
                          "  c: {script: c.py, parent_job_key: b}\n"
                          "  b: {script: b.py, parent_job_key: a}\n"
                          "  a: {name: First Job, script: a.py}\n")
    assert [(j["name"], j["parent"]) for j in jobs] == [
        ("First Job", None), ("b", "First Job"), ("c", "b")]  # the name defaults to the key


def test_the_list_shape_still_loads_and_may_use_names_with_spaces(tmp_path):
    jobs = load(tmp_path, "jobs:\n"
                          "  - {name: Child Job, script: c.py, parent_job_key: Root Job}\n"
                          "  - {name: Root Job, script: r.py}\n")
    assert [(j["name"], j["parent"]) for j in jobs] == [("Root Job", None),
                                                        ("Child Job", "Root Job")]


def test_an_unknown_parent_key_is_a_field_error_naming_the_job(tmp_path):
    errors = errors_of(tmp_path, SEED.replace("parent_job_key: git_repo_sync",
                                              "parent_job_key: git_sync"))
    assert list(errors) == ["jobs.create_env.parent_job_key"]
    assert "no job with key 'git_sync'" in errors["jobs.create_env.parent_job_key"][0].lower()
    assert "git_repo_sync" in errors["jobs.create_env.parent_job_key"][0]  # what there is


def test_a_parent_named_by_its_name_instead_of_its_key_is_an_error(tmp_path):
    errors = errors_of(tmp_path, SEED.replace("parent_job_key: git_repo_sync",
                                              'parent_job_key: "Git Repo Sync"'))
    assert "jobs.create_env.parent_job_key" in errors


def test_a_parent_cycle_is_an_error(tmp_path):
    errors = errors_of(tmp_path, "jobs:\n"
                                 "  a: {script: a.py, parent_job_key: c}\n"
                                 "  b: {script: b.py, parent_job_key: a}\n"
                                 "  c: {script: c.py, parent_job_key: b}\n")
    [(path, [message])] = errors.items()
    assert path.startswith("jobs.") and path.endswith(".parent_job_key")
    assert "cycle" in message and all(k in message for k in "abc")
    errors = errors_of(tmp_path, "jobs:\n  a: {script: a.py, parent_job_key: a}\n")
    assert errors == {"jobs.a.parent_job_key": ["A job cannot be its own parent."]}


def test_every_bad_field_of_the_seed_shape_is_listed_at_once(tmp_path):
    errors = errors_of(tmp_path, "jobs:\n"
                                 "  a: {script: a.py, cpu: lots, kernel: python3}\n"
                                 "  b: {name: \"two  spaces\", script: b.py, parent_job_key: zz}\n"
                                 "  c: not a job\n"
                                 "  d: {name: \"tab\\there\", script: d.py}\n"
                                 "  e: {cpu: 1}\n")
    assert set(errors) == {"jobs.a.cpu", "jobs.a.kernel", "jobs.b.name", "jobs.b.parent_job_key",
                           "jobs.c", "jobs.d.name", "jobs.e.script"}


def test_names_must_stay_unique(tmp_path):
    errors = errors_of(tmp_path, "jobs:\n"
                                 "  a: {name: Same Name, script: a.py}\n"
                                 "  b: {name: Same Name, script: b.py}\n")
    assert list(errors) == ["jobs.b.name"] and "unique" in errors["jobs.b.name"][0]


@pytest.mark.parametrize("text,path", [
    ("jobs: 3\n", "jobs"), ("- a\n", "(config)"), ("jobz: []\n", "jobz"),
    ("jobs:\n  'bad key': {script: a.py}\n", "jobs.bad key")])
def test_wrong_shapes_are_clear_errors(tmp_path, text, path):
    assert path in errors_of(tmp_path, text)

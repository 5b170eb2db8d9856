"""jobs_config.yaml: the environment jobs, validated and ordered parents first.

Two shapes load the same way:

- a list (ours): ``jobs: [{name, script, ..., parent_job_key: <another job's name>}]``;
- a mapping keyed by job key (the seed tool's): ``jobs: {<key>: {name, script, ...,
  parent_job_key: <another job's key>}}``; ``name`` defaults to the key.

Field errors name the job where the user wrote it: ``jobs.2.cpu`` in a list,
``jobs.create_env.parent_job_key`` in a mapping. A job's name is what the platform knows it
by (a CML Job's name, which may contain spaces); nothing is derived from it.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from marshmallow import ValidationError, fields, validate

from cluster.config import ConfigError, Strict, flatten_errors

# Printable text, no control characters, no leading or trailing blanks, no doubled blanks:
# it is shown in plans, logs and the CML UI, and compared exactly.
JOB_NAME = validate.Regexp(r"^[^\s\x00-\x1f\x7f-\x9f]+(?: [^\s\x00-\x1f\x7f-\x9f]+)*$",
                           error="Printable text (letters, digits, punctuation, single spaces "
                                 "between words), no control characters.")
JOB_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class JobSchema(Strict):
    name = fields.String(required=True, validate=[validate.Length(1, 100), JOB_NAME])
    script = fields.String(required=True, validate=validate.Length(min=1))
    arguments = fields.String(load_default="")
    cpu = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=64))
    memory = fields.Float(load_default=2.0, validate=validate.Range(min=0.25, max=512))
    timeout = fields.Integer(load_default=3600, validate=validate.Range(min=1))
    parent_job_key = fields.String(load_default=None, allow_none=True)
    environment = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class JobsConfigSchema(Strict):
    jobs = fields.Raw(required=True, metadata={
        "description": "a list of jobs, or a mapping of job key -> job (the seed's shape)"})


def load_jobs_config(path: Path) -> list[dict]:
    """The jobs of ``jobs_config.yaml`` in run order (parents before children): dicts with the
    job fields, ``parent`` (the parent job's name, or None) and ``key`` (how the file names
    the job: its key in a mapping, its name in a list)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError({"(file)": [f"{path} does not exist"]}, str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError({"(file)": [f"{path} cannot be read: {e}"]}, str(path)) from None
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError({"(yaml)": [str(e)]}, str(path)) from None
    try:
        return parse_jobs(doc)
    except ValidationError as e:
        raise ConfigError(flatten_errors(e.messages), str(path)) from None


def parse_jobs(doc) -> list[dict]:
    """``doc`` (the loaded YAML) as ordered jobs; ValidationError lists every bad field."""
    if not isinstance(doc, dict):
        raise ValidationError({"(config)": ["The top level must be a mapping with 'jobs'."]})
    jobs = JobsConfigSchema().load(doc)["jobs"]
    if isinstance(jobs, list):
        entries = [(str(i), job) for i, job in enumerate(jobs)]
        by_name = True  # parent_job_key names another job's name
    elif isinstance(jobs, dict):
        entries = [(str(key), job) for key, job in jobs.items()]
        by_name = False  # parent_job_key names another job's key
    else:
        raise ValidationError({"jobs": ["A list of jobs, or a mapping of job key -> job."]})

    errors: dict[str, dict] = {}
    loaded: dict[str, dict] = {}  # where (index or key) -> job
    for where, raw in entries:
        if not by_name and not JOB_KEY.match(where):
            errors[where] = {"_schema": ["A job key: letters, digits, '_', '.' and '-' only."]}
            continue
        if not isinstance(raw, dict):
            errors[where] = {"_schema": ["A job: a mapping with name, script, ..."]}
            continue
        try:
            loaded[where] = JobSchema().load(raw if by_name else {"name": where, **raw})
        except ValidationError as e:
            errors[where] = e.messages
    # what parent_job_key may name: every job's key, those with field errors too
    keys = {raw.get("name") if by_name else where for where, raw in entries
            if isinstance(raw, dict)}
    keys = {k for k in keys if isinstance(k, str)}
    for where, raw in entries:  # every job's parent, those with field errors too
        wanted = raw.get("parent_job_key") if isinstance(raw, dict) else None
        if isinstance(wanted, str) and wanted not in keys:
            errors.setdefault(where, {}).setdefault("parent_job_key", []).append(
                _unknown_parent(wanted, keys, by_name))
    return _order(loaded, by_name, errors)


def _order(loaded: dict[str, dict], by_name: bool, errors: dict) -> list[dict]:
    """Parents before children. Duplicate names, self-parents and cycles are errors at the
    job that has them, listed with the ``errors`` found before (unknown parents among them)."""
    names: dict[str, str] = {}  # name -> where
    for where, job in loaded.items():
        if job["name"] in names:
            other = _label(names[job["name"]], by_name)
            errors.setdefault(where, {})["name"] = [
                f"Another job ({other}) is also named {job['name']!r}: names must be unique."]
        names.setdefault(job["name"], where)
    for where, job in loaded.items():
        job["key"] = job["name"] if by_name else where
    lookup: dict[str, str] = {}  # key -> where (the first, when a name is duplicated)
    for where, job in loaded.items():
        lookup.setdefault(job["key"], where)
    parent_of: dict[str, str | None] = {}
    for where, job in loaded.items():
        wanted = job["parent_job_key"]
        if wanted is None:
            parent_of[where] = None
        elif wanted not in lookup:  # unknown (said above), or that job has field errors
            continue
        elif lookup[wanted] == where:
            errors.setdefault(where, {})["parent_job_key"] = ["A job cannot be its own parent."]
        else:
            parent_of[where] = lookup[wanted]
    if errors:
        raise ValidationError({"jobs": errors})

    ordered: list[str] = []
    done: set[str] = set()
    for start in loaded:  # walk up to a root (or a job already placed), then place the chain
        chain: list[str] = []
        where: str | None = start
        while where is not None and where not in done:
            if where in chain:
                cycle = chain[chain.index(where):] + [where]
                shown = " -> ".join(loaded[w]["key"] for w in cycle)
                raise ValidationError({"jobs": {where: {"parent_job_key": [
                    f"Parent cycle: {shown}."]}}})
            chain.append(where)
            where = parent_of[where]
        done.update(chain)
        ordered.extend(reversed(chain))
    return [{**loaded[w], "parent": loaded[parent_of[w]]["name"] if parent_of[w] else None}
            for w in ordered]


def _unknown_parent(wanted: str, keys: set[str], by_name: bool) -> str:
    what = "named" if by_name else "with key"
    return f"No job {what} {wanted!r} (there are: {', '.join(sorted(keys))})."


def _label(where: str, by_name: bool) -> str:
    return f"jobs.{where}" if by_name else f"key {where!r}"

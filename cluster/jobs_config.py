"""jobs_config.yaml: the environment jobs, validated and ordered parents first."""
from __future__ import annotations

from pathlib import Path

import yaml
from marshmallow import ValidationError, fields, post_load, validate

from cluster.config import ConfigError, Strict, flatten_errors


def load_jobs_config(path: Path) -> list[dict]:
    """The jobs of ``jobs_config.yaml``, in run order (parents before children)."""
    if not Path(path).exists():
        raise ConfigError({"(file)": [f"{path} does not exist"]}, str(path))
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        data = JobsConfigSchema().load(doc)
    except yaml.YAMLError as e:
        raise ConfigError({"(yaml)": [str(e)]}, str(path)) from None
    except ValidationError as e:
        raise ConfigError(flatten_errors(e.messages), str(path)) from None
    return data["jobs"]


class JobSchema(Strict):
    name = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$", error="Lowercase letters, digits, '_' and '-' only."))
    script = fields.String(required=True)
    arguments = fields.String(load_default="")
    cpu = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=64))
    memory = fields.Float(load_default=2.0, validate=validate.Range(min=0.25, max=512))
    timeout = fields.Integer(load_default=3600, validate=validate.Range(min=1))
    parent_job_key = fields.String(load_default=None, allow_none=True)
    environment = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class JobsConfigSchema(Strict):
    jobs = fields.List(fields.Nested(JobSchema), required=True)

    @post_load
    def order(self, data, **kwargs):
        jobs = {j["name"]: j for j in data["jobs"]}
        if len(jobs) != len(data["jobs"]):
            raise ValidationError({"jobs": ["Job names must be unique."]})
        ordered, seen = [], set()

        def visit(job, chain=()):
            if job["name"] in chain:
                raise ValidationError({"jobs": [f"Parent cycle through {job['name']!r}."]})
            parent = job.get("parent_job_key")
            if parent:
                if parent not in jobs:
                    raise ValidationError({"jobs": [f"{job['name']}: unknown parent {parent!r}."]})
                visit(jobs[parent], chain + (job["name"],))
            if job["name"] not in seen:
                seen.add(job["name"])
                ordered.append(job)

        for job in data["jobs"]:
            visit(job)
        return {"jobs": ordered}

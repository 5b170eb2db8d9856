"""CML's JSON as the records platforms speak in (``cluster.platforms.records``), and an app's
tags as CML keeps them: in its environment (CML has no tags)."""
from __future__ import annotations

import json

from cluster.platforms.cml.client import environment_out, epoch
from cluster.platforms.records import (
    FAILED,
    RUN_KEY_ENV,
    RUNNING,
    STARTING,
    STOPPED,
    App,
    AppSpec,
    Job,
    JobRun,
    JobSpec,
    legacy_tags,
)

TAGS_ENV = "RAYDEPLOY_TAGS"  # an app's tags (JSON), in its environment
APP_STATUS = {"APPLICATION_STARTING": STARTING, "APPLICATION_RUNNING": RUNNING,
              "APPLICATION_STOPPING": "stopping", "APPLICATION_STOPPED": STOPPED,
              "APPLICATION_FAILED": FAILED, "APPLICATION_UNKNOWN": FAILED}
RUN_STATUS = {"ENGINE_SUCCEEDED": "succeeded", "ENGINE_FAILED": "failed",
              "ENGINE_TIMEDOUT": "timedout", "ENGINE_STOPPED": "stopped",
              "ENGINE_SKIPPED": "skipped"}  # everything else: still going


def app_environment(spec: AppSpec) -> dict[str, str]:
    """The environment an app is created with: the spec's, and its tags."""
    return {**spec.env, TAGS_ENV: json.dumps(spec.tags, sort_keys=True)} if spec.tags else spec.env


def app_record(raw: dict) -> App:
    """An application; one made before apps had tags gets those its name said."""
    env = environment_out(raw.get("environment"))
    tags = env.pop(TAGS_ENV, None)
    spec = AppSpec(name=raw["name"], script=raw.get("script", ""), cpu=float(raw.get("cpu") or 0),
                   memory=float(raw.get("memory") or 0), gpus=int(raw.get("nvidia_gpu") or 0),
                   env=env, description=raw.get("description", ""),
                   public=bool(raw.get("bypass_authentication")),
                   tags=json.loads(tags) if tags else
                   legacy_tags(raw["name"], env.get("RAYDEPLOY_ROLE", "")))
    return App(id=raw["id"], name=raw["name"], status=APP_STATUS.get(raw.get("status"), FAILED),
               spec=spec, ip=None, created_at=epoch(raw.get("created_at")))


def job_record(raw: dict, by_id: dict[str, str]) -> Job:
    """A job; ``by_id``: the names of the project's jobs (its parent's is its spec's)."""
    env = environment_out(raw.get("environment"))
    spec = JobSpec(name=raw["name"], script=raw.get("script", ""),
                   arguments=raw.get("arguments", ""), cpu=float(raw.get("cpu") or 0),
                   memory=float(raw.get("memory") or 0), timeout=int(raw.get("timeout") or 0),
                   parent=by_id.get(raw.get("parent_id") or ""), environment=env)
    return Job(id=raw["id"], name=raw["name"], spec=spec)


def run_record(raw: dict) -> JobRun:
    env = environment_out(raw.get("environment"))
    return JobRun(id=raw["id"], job_id=raw["job_id"],
                  status=RUN_STATUS.get(raw.get("status"), "running"),
                  spec_hash=env.get(RUN_KEY_ENV, ""), created_at=epoch(raw.get("created_at")))

"""The simulated workspace: projects, jobs, job runs and applications.

Records are kept in memory (a simulator restart starts an empty workspace, and stops the
processes it started). Every application and job run is a real local process, started by a
LocalPlatform per project: each app gets its own loopback address as CDSW_IP_ADDRESS and the
CDSW_* variables a CML workload sees; the project directory plays /home/cdsw.
"""
from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cluster.platforms.base import FAILED, RUNNING, STARTING, STOPPED, AppSpec, JobSpec, PlatformError
from cluster.platforms.local import LocalPlatform
from cluster.ports import pick_port
from store import Store

SUBDOMAIN_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RUN_STATUS = {"running": "ENGINE_RUNNING", "succeeded": "ENGINE_SUCCEEDED",
              "failed": "ENGINE_FAILED", "timedout": "ENGINE_TIMEDOUT", "stopped": "ENGINE_STOPPED"}


class SimError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t or time.time(), UTC).isoformat().replace("+00:00", "Z")


def cml_id() -> str:
    h = uuid.uuid4().hex
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


@dataclass
class SimProject:
    id: str
    name: str
    dir: Path
    platform: LocalPlatform
    description: str = ""
    environment: dict = field(default_factory=dict)
    creation_status: str = "creating"
    created_at: float = field(default_factory=time.time)

    def to_api(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                "creation_status": self.creation_status, "environment": json.dumps(self.environment),
                "created_at": now_iso(self.created_at), "updated_at": now_iso(self.created_at),
                "default_engine_type": "ml_runtime", "visibility": "private",
                "slug": self.name.lower().replace(" ", "-"),
                "owner": {"username": "simulator"}, "creator": {"username": "simulator"}}


class Workspace:
    def __init__(self, root: Path, api_key: str, domain: str = "ml.localhost",
                 app_start_delay: float = 0.0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        self.domain = domain
        self.app_start_delay = app_start_delay
        self.lock = threading.RLock()
        self.projects: dict[str, SimProject] = {}
        self.jobs: dict[str, dict] = {}  # id -> job record (+ project_id, local_id)
        self.runs: dict[str, dict] = {}  # id -> run record (+ local_id)
        self.apps: dict[str, dict] = {}  # id -> app record (+ local_id)
        self._seq = itertools.count()
        self._stop = threading.Event()
        threading.Thread(target=self._chain_loop, daemon=True, name="job-chains").start()

    # -- projects -------------------------------------------------------------------------
    def create_project(self, body: dict) -> dict:
        name = body.get("name")
        if not name:
            raise SimError(400, "name is required")
        with self.lock:
            project_id = cml_id()
            directory = self.root / "projects" / project_id
            store = Store(self.root / "platform" / project_id)
            platform = LocalPlatform(store, directory, self.root / "platform" / project_id,
                                     files_dir=directory / ".raydeploy_files",
                                     extra_env=self._cdsw_env(project_id), project_id=project_id)
            project = SimProject(project_id, name, directory, platform,
                                 description=body.get("description", ""),
                                 environment=dict(body.get("environment") or {}))
            self.projects[project_id] = project
        template, git_url = body.get("template", "blank"), body.get("git_url")
        if template == "git" or git_url:
            threading.Thread(target=self._clone, args=(project, git_url, body.get("git_ref")),
                             daemon=True).start()
        else:
            directory.mkdir(parents=True, exist_ok=True)
            project.creation_status = "success"
        return project.to_api()

    def _clone(self, project: SimProject, git_url: str | None, ref: str | None) -> None:
        command = ["git", "clone", "--quiet", "--depth", "1"] + (["--branch", ref] if ref else [])
        result = subprocess.run(command + [git_url or "", str(project.dir)],
                                capture_output=True, text=True, timeout=600)
        project.creation_status = "success" if result.returncode == 0 else "failure"

    def project(self, project_id: str) -> SimProject:
        project = self.projects.get(project_id)
        if project is None:
            raise SimError(404, f"project {project_id} not found")
        return project

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        for app_id in [a for a, r in self.apps.items() if r["project_id"] == project_id]:
            self.delete_app(project_id, app_id)
        with self.lock:
            self.projects.pop(project_id)
            for job_id in [j for j, r in self.jobs.items() if r["project_id"] == project_id]:
                self.jobs.pop(job_id)
        shutil.rmtree(project.dir, ignore_errors=True)

    def _cdsw_env(self, project_id: str) -> dict:
        return {"CDSW_PROJECT_ID": project_id, "CDSW_DOMAIN": self.domain,
                "CDSW_APIV2_KEY": self.api_key, "CDSW_API_URL": f"https://{self.domain}/api/v1"}

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, project_id: str, body: dict) -> dict:
        project = self.project(project_id)
        for key in ("name", "script"):
            if not body.get(key):
                raise SimError(400, f"{key} is required")
        parent = body.get("parent_id") or body.get("parent_job_id") or ""
        if parent and parent not in self.jobs:
            raise SimError(404, f"parent job {parent} not found")
        with self.lock:
            job_id = cml_id()
            record = {"id": job_id, "project_id": project_id, "name": body["name"],
                      "script": body["script"], "arguments": body.get("arguments", ""),
                      "cpu": float(body.get("cpu") or 1), "memory": float(body.get("memory") or 1),
                      "nvidia_gpu": int(body.get("nvidia_gpu") or 0),
                      "timeout": int(body.get("timeout") or 0), "parent_id": parent,
                      "environment": dict(body.get("environment") or {}),
                      "runtime_identifier": body.get("runtime_identifier", ""),
                      "kill_on_timeout": bool(body.get("kill_on_timeout", False)),
                      "created_at": time.time(), "updated_at": time.time(), "type": "manual"}
            local = project.platform.create_job(self._local_job_spec(record))
            record["local_id"] = local.id
            self.jobs[job_id] = record
        return self.job_api(record)

    def _local_job_spec(self, record: dict) -> JobSpec:
        env = {**self.project(record["project_id"]).environment, **record["environment"]}
        return JobSpec(name=record["name"], script=record["script"], arguments=record["arguments"],
                       cpu=record["cpu"], memory=record["memory"],
                       timeout=record["timeout"] or 86400, environment=env)

    def job(self, project_id: str, job_id: str) -> dict:
        record = self.jobs.get(job_id)
        if record is None or record["project_id"] != project_id:
            raise SimError(404, f"job {job_id} not found")
        return record

    def update_job(self, project_id: str, job_id: str, body: dict) -> dict:
        record = self.job(project_id, job_id)
        with self.lock:
            for key in ("name", "script", "arguments", "cpu", "memory", "nvidia_gpu", "timeout",
                        "parent_id", "runtime_identifier", "kill_on_timeout"):
                if key in body and body[key] not in (None, ""):
                    record[key] = type(record[key])(body[key]) if key != "parent_id" else body[key]
            if "environment" in body:
                env = body["environment"]
                record["environment"] = json.loads(env) if isinstance(env, str) else dict(env)
            record["updated_at"] = time.time()
            self.project(project_id).platform.update_job(record["local_id"], self._local_job_spec(record))
        return self.job_api(record)

    def job_api(self, r: dict) -> dict:
        return {"id": r["id"], "name": r["name"], "script": r["script"], "arguments": r["arguments"],
                "cpu": r["cpu"], "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"],
                "timeout": str(r["timeout"]), "parent_id": r["parent_id"],
                "environment": json.dumps(r["environment"]), "type": r["type"],
                "runtime_identifier": r["runtime_identifier"], "kill_on_timeout": r["kill_on_timeout"],
                "created_at": now_iso(r["created_at"]), "updated_at": now_iso(r["updated_at"]),
                "project": {"public_identifier": r["project_id"]}}

    # -- job runs -------------------------------------------------------------------------
    def start_run(self, project_id: str, job_id: str, body: dict | None = None) -> dict:
        job = self.job(project_id, job_id)
        platform = self.project(project_id).platform
        overrides = dict((body or {}).get("environment") or {})
        env = {**self.project(project_id).environment, **job["environment"], **overrides}
        with self.lock:
            if overrides:
                platform.update_job(job["local_id"], JobSpec(**{
                    **self._local_job_spec(job).__dict__, "environment": env}))
            local = platform.start_job_run(job["local_id"], spec_hash="sim")
            if overrides:
                platform.update_job(job["local_id"], self._local_job_spec(job))
            run_id = cml_id()
            self.runs[run_id] = {"id": run_id, "job_id": job_id, "project_id": project_id,
                                 "local_id": local.id, "environment": env,
                                 "created_at": time.time(), "stopped": False, "chained": False,
                                 "arguments": (body or {}).get("arguments") or job["arguments"]}
        return self.run_api(self.runs[run_id])

    def run(self, project_id: str, job_id: str, run_id: str) -> dict:
        record = self.runs.get(run_id)
        if record is None or record["job_id"] != job_id or record["project_id"] != project_id:
            raise SimError(404, f"job run {run_id} not found")
        return record

    def run_status(self, record: dict) -> str:
        age = time.time() - record["created_at"]
        if record["stopped"]:
            return "ENGINE_STOPPED"
        local = self.project(record["project_id"]).platform.get_job_run(
            self.jobs[record["job_id"]]["local_id"], record["local_id"])
        if local.status != "running":
            return RUN_STATUS.get(local.status, "ENGINE_UNKNOWN")
        return "ENGINE_SCHEDULING" if age < 0.2 else "ENGINE_STARTING" if age < 0.4 else "ENGINE_RUNNING"

    def stop_run(self, project_id: str, job_id: str, run_id: str) -> dict:
        record = self.run(project_id, job_id, run_id)
        local = self.project(project_id).platform.store.job_run(record["local_id"])
        from cluster import processes
        if local and local.get("pid") and processes.is_ours(local["pid"], local["pid_start"]):
            processes.stop_session(local["pid"], grace_seconds=1)
        record["stopped"] = True
        return self.run_api(record)

    def run_api(self, r: dict) -> dict:
        status = self.run_status(r)
        job = self.jobs[r["job_id"]]
        out = {"id": r["id"], "job_id": r["job_id"], "project_id": r["project_id"],
               "status": status, "created_at": now_iso(r["created_at"]),
               "environment": json.dumps(r["environment"]), "arguments": r["arguments"],
               "cpu": job["cpu"], "memory": job["memory"], "nvidia_gpu": job["nvidia_gpu"],
               "runtime_identifier": job["runtime_identifier"]}
        if status in ("ENGINE_SUCCEEDED", "ENGINE_FAILED", "ENGINE_TIMEDOUT", "ENGINE_STOPPED"):
            out["finished_at"] = now_iso()
        return out

    def _chain_loop(self) -> None:
        """A child job starts when its parent's run succeeds, as in CML."""
        while not self._stop.wait(0.2):
            for run in list(self.runs.values()):
                if run["chained"] or run["project_id"] not in self.projects:
                    continue
                try:
                    status = self.run_status(run)
                except Exception:
                    continue
                if status in ("ENGINE_SUCCEEDED", "ENGINE_FAILED", "ENGINE_TIMEDOUT", "ENGINE_STOPPED"):
                    run["chained"] = True
                    if status == "ENGINE_SUCCEEDED":
                        for child in [j for j in self.jobs.values() if j["parent_id"] == run["job_id"]]:
                            self.start_run(child["project_id"], child["id"])

    # -- applications -----------------------------------------------------------------------
    def create_app(self, project_id: str, body: dict) -> dict:
        project = self.project(project_id)
        for key in ("name", "subdomain", "script"):
            if not body.get(key):
                raise SimError(400, f"{key} is required")
        if not SUBDOMAIN_RE.match(body["subdomain"]):
            raise SimError(400, f"invalid subdomain {body['subdomain']!r}")
        with self.lock:
            if any(a["subdomain"] == body["subdomain"] for a in self.apps.values()):
                raise SimError(409, f"subdomain {body['subdomain']!r} is already taken")
            app_id = cml_id()
            port = pick_port(0, {a["port"] for a in self.apps.values()})
            env = {**project.environment, **dict(body.get("environment") or {}),
                   "CDSW_APP_PORT": str(port), "CDSW_READONLY_PORT": str(port)}
            record = {"id": app_id, "project_id": project_id, "name": body["name"],
                      "subdomain": body["subdomain"], "description": body.get("description", ""),
                      "script": body["script"], "cpu": float(body.get("cpu") or 1),
                      "memory": float(body.get("memory") or 1),
                      "nvidia_gpu": int(body.get("nvidia_gpu") or 0), "environment": env,
                      "runtime_identifier": body.get("runtime_identifier", ""),
                      "bypass_authentication": bool(body.get("bypass_authentication", False)),
                      "created_at": time.time(), "port": port, "state": "starting",
                      "local_id": None}
            self.apps[app_id] = record
        self._start_app(project, record)
        return self.app_api(record)

    def _start_app(self, project: SimProject, record: dict) -> None:
        spec = AppSpec(name=f"{record['subdomain']}-{record['id']}", script=record["script"],
                       cpu=record["cpu"], memory=record["memory"], gpus=record["nvidia_gpu"],
                       env={k: str(v) for k, v in record["environment"].items()})
        try:
            local = project.platform.create_app(spec)
        except PlatformError:  # CML accepts the app; it fails when its script is missing
            record.update(local_id=None, state="failed", started_at=time.time())
            return
        record.update(local_id=local.id, state="starting", started_at=time.time())

    def app(self, project_id: str, app_id: str) -> dict:
        record = self.apps.get(app_id)
        if record is None or record["project_id"] != project_id:
            raise SimError(404, f"application {app_id} not found")
        return record

    def app_status(self, record: dict) -> str:
        if record["state"] == "stopped":
            return "APPLICATION_STOPPED"
        if record["state"] == "failed":
            return "APPLICATION_FAILED"
        local = self.project(record["project_id"]).platform.get_app(record["local_id"])
        if local.status == FAILED:
            return "APPLICATION_FAILED"
        if local.status == STOPPED:
            return "APPLICATION_STOPPED"
        if local.status in (STARTING, RUNNING):
            started = record.get("started_at", record["created_at"])
            return ("APPLICATION_STARTING" if time.time() - started < self.app_start_delay
                    else "APPLICATION_RUNNING")
        return "APPLICATION_UNKNOWN"

    def stop_app(self, project_id: str, app_id: str) -> dict:
        record = self.app(project_id, app_id)
        if record["local_id"]:
            self.project(project_id).platform.delete_app(record["local_id"])
        record.update(state="stopped", stopped_at=time.time(), local_id=None)
        return self.app_api(record)

    def restart_app(self, project_id: str, app_id: str) -> dict:
        record = self.app(project_id, app_id)
        if record["local_id"]:
            self.project(project_id).platform.delete_app(record["local_id"])
        self._start_app(self.project(project_id), record)
        return self.app_api(record)

    def delete_app(self, project_id: str, app_id: str) -> None:
        self.stop_app(project_id, app_id)
        with self.lock:
            self.apps.pop(app_id, None)

    def update_app(self, project_id: str, app_id: str, body: dict) -> dict:
        record = self.app(project_id, app_id)
        for key in ("name", "description", "cpu", "memory", "nvidia_gpu", "script"):
            if key in body and body[key] not in (None, ""):
                record[key] = type(record[key])(body[key])
        if "environment" in body:
            env = body["environment"]
            record["environment"].update(json.loads(env) if isinstance(env, str) else env)
        return self.app_api(record)

    def app_api(self, r: dict) -> dict:
        status = self.app_status(r)
        public_env = {k: v for k, v in r["environment"].items() if not k.startswith("CDSW_")}
        out = {"id": r["id"], "name": r["name"], "subdomain": r["subdomain"],
               "description": r["description"], "script": r["script"], "cpu": r["cpu"],
               "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"], "status": status,
               "environment": json.dumps(public_env), "runtime_identifier": r["runtime_identifier"],
               "bypass_authentication": r["bypass_authentication"],
               "created_at": now_iso(r["created_at"]), "updated_at": now_iso(r["created_at"])}
        if status == "APPLICATION_RUNNING":
            out["running_at"] = now_iso(r.get("started_at"))
        if r.get("stopped_at"):
            out["stopped_at"] = now_iso(r["stopped_at"])
        return out

    # -- shutdown ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._stop.set()
        for app in list(self.apps.values()):
            try:
                self.stop_app(app["project_id"], app["id"])
            except Exception:
                pass

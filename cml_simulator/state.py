"""The simulated workspace: projects here, jobs and runs in jobs.py, applications in apps.py.

Records are kept in memory (a simulator restart starts an empty workspace, and stops the
processes it started). Every application and job run is a real local process, started by a
LocalPlatform per project: each app gets its own loopback address as CDSW_IP_ADDRESS and the
CDSW_* variables a CML workload sees; the project directory plays /home/cdsw.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.platforms.local import LocalPlatform
from cml_simulator.apps import AppsMixin
from cml_simulator.common import ENGINE_TYPES, SITE_ENGINE_TYPE, USER, SimError, cml_id, now_iso
from cml_simulator.jobs import JobsMixin
from cml_simulator.pods import PodPlatform, Pods
from store import Store

__all__ = ["SimError", "SimProject", "Workspace", "now_iso"]

DEFAULT_APP_START_DELAY = 1.0  # seconds an application is APPLICATION_STARTING
DEFAULT_APP_STOP_DELAY = 0.5  # seconds an application is APPLICATION_STOPPING, at least


@dataclass
class SimProject:
    id: str
    name: str
    dir: Path
    platform: LocalPlatform
    description: str = ""
    environment: dict = field(default_factory=dict)
    engine_type: str = SITE_ENGINE_TYPE  # "ml_runtime" or "legacy_engine"
    creation_status: str = "creating"
    created_at: float = field(default_factory=time.time)

    @property
    def slug(self) -> str:
        """The name as a URL path part: lowercase letters, digits and single '-' (a name may
        hold spaces and punctuation: "Ray Cluster (prod)" -> "ray-cluster-prod")."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or self.id

    def to_api(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                "creation_status": self.creation_status, "environment": json.dumps(self.environment),
                "created_at": now_iso(self.created_at), "updated_at": now_iso(self.created_at),
                "default_engine_type": self.engine_type, "visibility": "private",
                "slug": self.slug, "owner": dict(USER), "creator": dict(USER)}


class Workspace(JobsMixin, AppsMixin):
    def __init__(self, root: Path, api_key: str, domain: str = "ml.localhost",
                 app_start_delay: float = DEFAULT_APP_START_DELAY,
                 app_stop_delay: float = DEFAULT_APP_STOP_DELAY, pods: Pods | None = None):
        """``pods``: every app and job run is a pod in that lab (else a process here)."""
        self.root = Path(root)
        self.pods = pods
        self.root.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        self.domain = domain
        self.app_start_delay = app_start_delay
        self.app_stop_delay = app_stop_delay
        self.lock = threading.RLock()
        self.projects: dict[str, SimProject] = {}
        self.jobs: dict[str, dict] = {}  # id -> job record (+ project_id, local_id)
        self.runs: dict[str, dict] = {}  # id -> run record (+ local_id)
        self.apps: dict[str, dict] = {}  # id -> app record (+ local_id)
        self._stop = threading.Event()
        threading.Thread(target=self._chain_loop, daemon=True, name="job-chains").start()

    # -- projects -------------------------------------------------------------------------
    def create_project(self, body: dict) -> dict:
        name = body.get("name")
        if not name:
            raise SimError(400, "name is required")
        engine_type = body.get("default_project_engine_type") or SITE_ENGINE_TYPE
        if engine_type not in ENGINE_TYPES:
            raise SimError(400, f"default_project_engine_type must be one of "
                                f"{', '.join(ENGINE_TYPES)} or blank (got {engine_type!r})")
        with self.lock:
            project_id = cml_id()
            directory = self.root / "projects" / project_id
            store = Store(self.root / "platform" / project_id)
            args = (store, directory, self.root / "platform" / project_id)
            options = {"files_dir": directory / ".raydeploy_files",
                       "extra_env": self._cdsw_env(project_id), "project_id": project_id,
                       "address_env": "CDSW_IP_ADDRESS"}
            platform = (PodPlatform(self.pods, *args, **options) if self.pods
                        else LocalPlatform(*args, **options))
            project = SimProject(project_id, name, directory, platform,
                                 description=body.get("description") or "",
                                 environment=dict(body.get("environment") or {}),
                                 engine_type=engine_type)
            self.projects[project_id] = project
        template, git_url = body.get("template") or "blank", body.get("git_url")
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
        for app_id in [a for a, r in list(self.apps.items()) if r["project_id"] == project_id]:
            self.delete_app(project_id, app_id)
        with self.lock:
            self.projects.pop(project_id)
            self.forget_jobs([j for j, r in self.jobs.items() if r["project_id"] == project_id])
        shutil.rmtree(project.dir, ignore_errors=True)

    def _cdsw_env(self, project_id: str) -> dict:
        scheme = "http" if self.pods else "https"  # the lab's edge serves plain HTTP
        return {"CDSW_PROJECT_ID": project_id, "CDSW_DOMAIN": self.domain,
                "CDSW_APIV2_KEY": self.api_key, "CDSW_API_URL": f"{scheme}://{self.domain}/api/v1"}

    # -- shutdown ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every app's process, all at once, with a short grace: the workspace ends."""
        self._stop.set()  # pending stops skip their remaining delay

        def stop(app: dict) -> None:
            try:
                self._stop_now(app, grace_seconds=1)
            except Exception:
                pass
        threads = [threading.Thread(target=stop, args=(a,)) for a in list(self.apps.values())]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

"""The CML platform: nodes are CML Applications, environment jobs are CML Jobs.

Creates look the name up first (exact match over the substring search), so a create that is
retried after a lost answer never makes a second project, job or application. Many apps at
once (``create_apps``) take one listing, not one lookup each. Project files
(node addresses) live under ``.raydeploy_files/`` in the project, where the launcher writes.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

from cluster.platforms.base import Platform, PlatformError, existing
from cluster.platforms.cml import settings
from cluster.platforms.cml.client import (
    CMLClient,
    environment_patch,
    subdomain,
    with_git_token,
)
from cluster.platforms.cml.records import app_environment, app_record, job_record, run_record
from cluster.platforms.cml.settings import runtime_choices
from cluster.platforms.records import (
    RUN_KEY_ENV,
    App,
    AppSpec,
    Job,
    JobRun,
    JobSpec,
    Project,
)
from core import crashpoints
from core.errors import NotFound
from core.timing import SYSTEM_CLOCK

FILES = ".raydeploy_files"
VENV = ".venv"  # the project venv jobs/setup_environment.py builds

class ProjectMissing(PlatformError):
    """The project this config names does not exist (yet)."""


class CMLPlatform(Platform):
    name = "cml"
    chains_jobs = True  # a child job starts by itself when its parent's run succeeds
    has_jobs = has_project_files = True  # CML Jobs; the project's directory
    secret_env = ("CDSW_APIV2_KEY", "CML_API_KEY")  # every app gets its owner's workspace key
    control_plane_setting = "cml.control_plane: app"
    one_network_setting = "cml.shared_host_network"

    settings_section = "cml"
    settings_schema = settings.CMLSchema
    env_overrides = settings.ENV_OVERRIDES
    env_defaults = staticmethod(settings.env_defaults)
    map_legacy = staticmethod(settings.map_cai)
    required_when_selected = staticmethod(settings.required_when_selected)

    @classmethod
    def create(cls, config, store=None) -> CMLPlatform:
        return cls(config)

    @classmethod
    def published_port(cls, environ) -> tuple[int, str] | None:
        # an app serves on 127.0.0.1:$CDSW_APP_PORT, https://<subdomain>.$CDSW_DOMAIN
        port = environ.get("CDSW_APP_PORT", "")
        return (int(port), "CDSW_APP_PORT") if port.isdigit() and environ.get("CDSW_DOMAIN") \
            else None

    def __init__(self, config, client: CMLClient | None = None):
        super().__init__(config)
        self.cml = cml = config.platform_settings[self.settings_section]
        self.client = client or CMLClient(cml.host, cml.api_key, budget=cml.timeout_seconds,
                                          max_requests_per_second=cml.max_requests_per_second)
        # the simulator runs every app on one host; real CML pods each have their own network
        self.shares_host_network = cml.shared_host_network
        self.project_timeout_seconds = cml.project_timeout_seconds
        self._project_id = cml.project_id

    @property
    def project_name(self) -> str:
        return self.cml.project_name or self.config.cluster_name

    def job_environment(self) -> dict[str, str]:
        # the project is a clone made for the cluster: jobs may pull it and build a venv in it
        return {"RAYDEPLOY_PROJECT_CLONE": "1"}

    def node_environment(self) -> dict[str, str]:
        # nodes run in the venv setup_environment built in the project (not the runtime's
        # own interpreter); on one shared host the simulator's interpreter is the image
        # where CML puts a pod's address and published port; what Ray must not hold; the
        # head leaves the Ray token in the project's files, for the project's sessions and
        # jobs (the control plane's own copy is in another project: control.py)
        env = {"RAYDEPLOY_NODE_ADDRESS_FROM": "CDSW_IP_ADDRESS",
               "RAYDEPLOY_APP_PORT_FROM": "CDSW_APP_PORT",
               "RAYDEPLOY_PLATFORM_SECRETS": ",".join(self.secret_env),
               "RAYDEPLOY_PUBLISH_RAY_TOKEN": "1"}
        return env if self.shares_host_network else {**env, "RAYDEPLOY_VENV": VENV}

    @classmethod
    def usage(cls) -> tuple[str, str]:
        # the head leaves the token in the project files (cluster/launcher.py)
        return (f"/home/cdsw/{FILES}/ray_token",
                "inside the workspace: a session or job of the cluster's project")

    def public_url(self, app: App) -> str | None:
        scheme, _, rest = self.client.host.partition("://")
        domain = rest.split("/", 1)[0]
        return f"{scheme}://{subdomain(app.name)}.{domain}"

    def _create(self, find, post, what: str, tries: int = 6, absent: bool = False):
        """Create once: after an ambiguous failure, look the name up before trying again.

        Ambiguous: a 5xx or no answer (the create may have taken effect and only its answer
        was lost), or a 409 (a create we gave up on may have landed meanwhile, taking the
        unique subdomain). ``absent``: the caller has just seen that the name does not exist,
        so the first try posts without looking it up again."""
        for attempt in range(tries):
            if attempt or not absent:
                existing = find()
                if existing is not None:
                    return existing
            try:
                return post()
            except PlatformError as e:
                final = isinstance(e, NotFound) or ("HTTP 4" in str(e) and "HTTP 409" not in str(e))
                if final or attempt == tries - 1:
                    raise
                SYSTEM_CLOCK.sleep(min(2.0, 0.05 * 2 ** attempt))
        raise PlatformError(f"{what}: gave up")

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> list[str]:
        try:
            answer = self.client.validate_key()
        except PlatformError as e:
            return [str(e)]
        problems = [] if answer.get("valid", True) else ["CML says the API key is not valid"]
        wanted = self.cml.runtime_identifier
        available = [r["image_identifier"] for r in self.client.runtimes() if r.get("image_identifier")]
        if not wanted:  # projects are ML Runtimes projects: CML refuses jobs and apps without one
            problems.append("cml.runtime_identifier (or RUNTIME_IDENTIFIER) is not set: CML needs "
                            "an ML Runtime for jobs and applications; " + runtime_choices(available))
        elif wanted not in available:
            problems.append(f"cml.runtime_identifier {wanted} is not available in this workspace; "
                            + runtime_choices(available))
        return problems

    @property
    def runtime_identifier(self) -> str:
        """The ML Runtime jobs and apps run in (prerequisites checks it is set and available)."""
        if not self.cml.runtime_identifier:
            raise PlatformError("cml.runtime_identifier is not set (see GET /api/v2/runtimes)")
        return self.cml.runtime_identifier

    # -- project --------------------------------------------------------------------------------
    @property
    def project_id(self) -> str:
        if not self._project_id:
            project = self.find_project(self.project_name)
            if project is None:
                raise ProjectMissing("the CML project does not exist yet (run project_setup)")
            self._project_id = project.id
        return self._project_id

    def find_project(self, name: str) -> Project | None:
        if self._project_id:
            try:
                found = self.client.request("GET", f"/projects/{self._project_id}",
                                            f"get project {self._project_id}")
            except NotFound:
                if self._chosen_by_id:  # never made anew
                    raise self._missing_by_id() from None
                return None
        else:
            found = self.client.find_by_name("/projects", "projects", name, f"find project {name}")
        if found is None:
            return None
        return Project(id=found["id"], name=found["name"], status=found.get("creation_status", "success"))

    @property
    def _chosen_by_id(self) -> bool:
        return bool(self._project_id) and self._project_id == self.cml.project_id

    def _missing_by_id(self) -> ProjectMissing:
        return ProjectMissing(
            f"project {self._project_id} does not exist in {self.client.host} (cml.project_id, "
            f"else {' or '.join(settings.PROJECT_ID_VARS)}, names an existing project; unset it "
            f"to find or create {self.project_name!r} by name)")

    def create_project(self, name: str) -> Project:
        """Create the project (from ``cml.git_url`` when set); its clone finishes later."""
        git_url = self.cml.git_url
        body = {"name": name, "template": "git" if git_url else "blank",
                "default_project_engine_type": "ml_runtime", "visibility": "private"}
        if git_url:
            body["git_url"] = with_git_token(git_url, os.environ.get("CML_GIT_TOKEN"))

        def post():
            raw = self.client.request("POST", "/projects", f"create project {name}", json=body)
            return Project(id=raw["id"], name=name, status=raw.get("creation_status", "creating"))
        project = self._create(lambda: self.find_project(name), post, f"create project {name}")
        self._project_id = project.id
        return project

    def on_project(self, name: str) -> CMLPlatform:
        """This platform on another project (by name), through the same client and limit."""
        other = type(self)(self.config, client=self.client)
        other.cml = dataclasses.replace(self.cml, project_name=name, project_id=None)
        other._project_id = None
        return other

    def _path(self, suffix: str) -> str:
        return f"/projects/{self.project_id}{suffix}"

    # -- project files (the cluster's under .raydeploy_files/; *_at: from the project's root) ------
    def read_file(self, path: str) -> str | None:
        return self.read_file_at(f"{FILES}/{path}")

    def write_file(self, path: str, content: str) -> None:
        self.write_file_at(f"{FILES}/{path}", content)

    def delete_file(self, path: str) -> None:
        self.delete_file_at(f"{FILES}/{path}")

    def read_file_at(self, path: str) -> str | None:
        try:
            data = self.client.request("POST", self._path(f"/files/{path}:download"),
                                       f"download {path}")
        except NotFound:
            return None
        return data.decode() if isinstance(data, bytes) else str(data)

    def write_file_at(self, path: str, content: str) -> None:
        self.delete_file_at(path)  # an upload never overwrites (it would store name(1).ext)
        self.client.request("POST", self._path("/files"), f"upload {path}",
                            files={path: (path.rsplit("/", 1)[-1], content.encode())})

    def delete_file_at(self, path: str) -> None:
        try:
            self.client.request("DELETE", self._path(f"/files/{path}"), f"delete {path}")
        except NotFound:
            pass

    # -- the control plane ---------------------------------------------------------------------
    @classmethod
    def control_plane_url(cls, config, digests: list[dict], say, make: bool = True) -> str | None:
        from cluster.platforms.cml import control
        return control.url_for(cls, config, digests, say, make)

    # -- applications ------------------------------------------------------------------------------
    def _list(self, suffix: str, key: str, what: str) -> list[dict]:
        """Every item of a list under the project: none while the project is not made yet; a
        project chosen by id that does not exist says so (not a bare 404)."""
        try:
            path = self._path(suffix)
        except ProjectMissing:  # no project yet: nothing in it either
            return []
        try:
            return list(self.client.list(path, key, what))
        except NotFound:
            if self._chosen_by_id:
                raise self._missing_by_id() from None
            raise

    def list_apps(self) -> list[App]:
        return [app_record(a) for a in self._list("/applications", "applications", "list applications")]

    def get_app(self, app_id: str) -> App:
        return app_record(self.client.request("GET", self._path(f"/applications/{app_id}"),
                                             f"get application {app_id}"))

    def _find_app(self, name: str) -> dict | None:
        return self.client.find_by_name(self._path("/applications"), "applications", name,
                                        f"find application {name}")

    def create_app(self, spec: AppSpec, absent: bool = False) -> App:
        """``absent``: the caller has just listed the apps and this one is not among them.
        The spec's name is unique in the project (CML's rule), so an app with its tags is
        looked up by its name (``existing``: one with other tags is refused)."""
        body = {"name": spec.name, "subdomain": subdomain(spec.name), "script": spec.script,
                "description": spec.description, "cpu": spec.cpu, "memory": spec.memory,
                "nvidia_gpu": spec.gpus, "environment": app_environment(spec),
                "bypass_authentication": spec.public}
        body["runtime_identifier"] = self.runtime_identifier

        def find() -> dict | None:
            raw = self._find_app(spec.name)
            return existing(spec, [(raw, app_record(raw).spec)] if raw else [])

        raw = self._create(find,
                           lambda: self.client.request("POST", self._path("/applications"),
                                                       f"create application {spec.name}", json=body),
                           f"create application {spec.name}", absent=absent)
        crashpoints.unrecorded()
        return app_record(raw)

    def create_apps(self, specs: list[AppSpec]) -> list[App]:
        """Many apps at once, as a careful CML user makes them: one listing says which exist
        already (a resumed launch keeps them), then every missing one is created at once, the
        client's rate limit setting the pace (not a pool size), each looked up after an
        ambiguous failure before it is tried again, so none is ever created twice."""
        if not specs:
            return []
        existing = {a.spec.identity: a for a in self.list_apps()}
        missing = list({s.identity: s for s in specs if s.identity not in existing}.values())
        if missing:
            with ThreadPoolExecutor(max_workers=min(len(missing), self.client.max_in_flight)) as pool:
                existing.update((a.spec.identity, a) for a in
                                pool.map(lambda s: self.create_app(s, absent=True), missing))
        return [existing[s.identity] for s in specs]

    def stop_app(self, app_id: str, grace_seconds: float = 5.0) -> None:
        self.client.request("POST", self._path(f"/applications/{app_id}:stop"),
                            f"stop application {app_id}")

    def delete_app(self, app_id: str) -> None:
        try:
            self.client.request("DELETE", self._path(f"/applications/{app_id}"),
                                f"delete application {app_id}")
        except NotFound:
            pass

    # -- jobs --------------------------------------------------------------------------------------
    def list_jobs(self) -> list[Job]:
        raw = self._list("/jobs", "jobs", "list jobs")
        by_id = {j["id"]: j["name"] for j in raw}
        return [job_record(j, by_id) for j in raw]

    def _job_body(self, spec: JobSpec, parent_id: str | None) -> dict:
        body = {"name": spec.name, "script": spec.script, "arguments": spec.arguments,
                "cpu": spec.cpu, "memory": spec.memory, "timeout": spec.timeout,
                "kill_on_timeout": True, "environment": spec.environment,
                "runtime_identifier": self.runtime_identifier}
        if parent_id:  # an empty parent_id is not "no parent" to CML: leave it out
            body["parent_id"] = parent_id
        return body

    def create_job(self, spec: JobSpec, parent_id: str | None = None) -> Job:
        find = lambda: next((j for j in self.list_jobs() if j.name == spec.name), None)  # noqa: E731
        self._create(find, lambda: self.client.request("POST", self._path("/jobs"),
                                                       f"create job {spec.name}",
                                                       json=self._job_body(spec, parent_id)),
                     f"create job {spec.name}")
        return find()

    def update_job(self, job_id: str, spec: JobSpec, parent_id: str | None = None) -> Job:
        current = self.client.request("GET", self._path(f"/jobs/{job_id}"), f"get job {spec.name}")
        if current.get("parent_id") and not parent_id:
            # a PATCH keeps a parent it is not given: a job that loses its parent is made anew
            self.client.request("DELETE", self._path(f"/jobs/{job_id}"), f"delete job {spec.name}")
            return self.create_job(spec)
        body = self._job_body(spec, parent_id)
        body["environment"] = environment_patch(spec.environment)  # a string in PATCH bodies
        self.client.request("PATCH", self._path(f"/jobs/{job_id}"), f"update job {spec.name}",
                            json=body)
        return next(j for j in self.list_jobs() if j.id == job_id)

    def start_job_run(self, job_id: str, spec_hash: str) -> JobRun:
        """Start a run once: after an ambiguous failure (the run may have started, its answer
        lost) a run of this spec that was not there before is the one started."""
        before = {r.id for r in self.job_runs(job_id)}

        def find() -> JobRun | None:
            return next((r for r in self.job_runs(job_id)
                         if r.id not in before and r.spec_hash == spec_hash), None)
        return self._create(find, lambda: run_record(self.client.request(
            "POST", self._path(f"/jobs/{job_id}/runs"), f"run job {job_id}",
            json={"environment": {RUN_KEY_ENV: spec_hash}})), f"run job {job_id}", absent=True)

    def get_job_run(self, job_id: str, run_id: str) -> JobRun:
        return run_record(self.client.request("GET", self._path(f"/jobs/{job_id}/runs/{run_id}"),
                                             f"get run {run_id} of job {job_id}"))

    def job_runs(self, job_id: str) -> list[JobRun]:
        return [run_record(r) for r in self.client.list(self._path(f"/jobs/{job_id}/runs"),
                                                       "job_runs", f"list runs of job {job_id}")]

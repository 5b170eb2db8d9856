"""Where cluster nodes run: the ``Platform`` interface and the records it speaks in.

A platform has projects, jobs (with runs) and applications, plus files in the project that
every app of the project can read. CML has exactly these; the local platform imitates them
with processes, so the checkpoints and ``ClusterManager`` are written once.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol


class PlatformError(Exception):
    """A platform call failed; the message names the call and the resource, never a secret."""


class NotFound(PlatformError):
    pass


# App statuses, shared by both platforms (CML's APPLICATION_* names without the prefix).
STARTING, RUNNING, STOPPING, STOPPED, FAILED = "starting", "running", "stopping", "stopped", "failed"
# Job run statuses (CML's ENGINE_* names without the prefix).
RUN_TERMINAL = {"succeeded", "failed", "timedout", "stopped", "skipped"}


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    status: str = "success"


@dataclass(frozen=True)
class AppSpec:
    name: str
    script: str  # a Python file, relative to the project directory
    cpu: float
    memory: float  # GB
    gpus: int = 0
    env: dict = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class App:
    id: str
    name: str
    status: str
    spec: AppSpec
    ip: str | None = None  # known up front on the local platform; published by the node on CML
    created_at: float = 0.0


@dataclass(frozen=True)
class JobSpec:
    name: str
    script: str
    arguments: str = ""
    cpu: float = 1.0
    memory: float = 2.0
    timeout: int = 3600
    parent: str | None = None  # name of the parent job
    environment: dict = field(default_factory=dict)

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    spec: JobSpec


@dataclass(frozen=True)
class JobRun:
    id: str
    job_id: str
    status: str
    spec_hash: str = ""
    exit_code: int | None = None
    created_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in RUN_TERMINAL


class Platform(Protocol):
    name: str

    def check(self) -> list[str]:
        """Problems that stop a deploy (unreachable, bad credentials); empty when usable."""

    def find_project(self, name: str) -> Project | None: ...
    def create_project(self, name: str) -> Project: ...

    def list_jobs(self) -> list[Job]: ...
    def create_job(self, spec: JobSpec, parent_id: str | None) -> Job: ...
    def update_job(self, job_id: str, spec: JobSpec, parent_id: str | None) -> Job: ...
    def start_job_run(self, job_id: str, spec_hash: str) -> JobRun: ...
    def get_job_run(self, job_id: str, run_id: str) -> JobRun: ...
    def job_runs(self, job_id: str) -> list[JobRun]: ...

    def list_apps(self) -> list[App]: ...
    def create_app(self, spec: AppSpec) -> App: ...
    def get_app(self, app_id: str) -> App: ...
    def stop_app(self, app_id: str, grace_seconds: float = 5.0) -> None: ...
    def delete_app(self, app_id: str) -> None: ...

    def write_file(self, path: str, content: str) -> None: ...
    def read_file(self, path: str) -> str | None: ...
    def delete_file(self, path: str) -> None: ...

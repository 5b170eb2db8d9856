"""The records platforms speak in: app and job specs, apps, jobs and their runs, what a
command run on a node answered, and an app's tags (its identity). Plain data: no platform
here (``cluster.platforms.base``)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import ClassVar

# App statuses, shared by every platform (CML's APPLICATION_* names without the prefix).
STARTING, RUNNING, STOPPING, STOPPED, FAILED = "starting", "running", "stopping", "stopped", "failed"
LIVE = (STARTING, RUNNING)
# Job run statuses (CML's ENGINE_* names without the prefix).
RUN_TERMINAL = {"succeeded", "failed", "timedout", "stopped", "skipped"}
# In a job run's environment: the job spec (and script) it ran, so a later run of the same
# spec can be skipped. Platforms whose child jobs start by themselves carry it in the job.
RUN_KEY_ENV = "RAYDEPLOY_RUN_KEY"

# An app's tags: the cluster it belongs to, what it is to it (head | worker | prometheus, a
# service beside the head), and a worker's index.
TAG_CLUSTER, TAG_KIND, TAG_INDEX = "raydeploy-cluster", "raydeploy-kind", "raydeploy-index"


def node_tags(cluster: str, kind: str, index: int | None = None) -> dict[str, str]:
    return {TAG_CLUSTER: cluster, TAG_KIND: kind,
            **({TAG_INDEX: str(index)} if index is not None else {})}


def legacy_tags(name: str, kind: str) -> dict[str, str]:
    """The tags of an app made before apps had tags (its record or environment says its
    kind, its name said the rest: ``<cluster>-head``, ``<cluster>-worker-<n>``,
    ``<cluster>-prometheus``); none for an app that is no node of a cluster."""
    if kind in ("head", "prometheus") and name.endswith(f"-{kind}"):
        return node_tags(name[:-len(kind) - 1], kind)
    cluster, _, index = name.rpartition("-worker-")
    if kind == "worker" and cluster and index.isdigit():
        return node_tags(cluster, kind, int(index))
    return {}


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    status: str = "success"  # creating | success | failure (CML's creation_status)


@dataclass(frozen=True)
class AppSpec:
    name: str
    script: str  # a Python file, relative to the project directory
    cpu: float
    memory: float  # GB
    gpus: int = 0
    env: dict = field(default_factory=dict)
    description: str = ""
    public: bool = False  # its URL needs no platform login (CML: bypass_authentication)
    tags: dict = field(default_factory=dict)  # its identity: kept, and listed by, the platform

    @property
    def role(self) -> str:
        """What the node is to its cluster (``TAG_KIND``); a platform that chooses machines
        places by it ("": no node of a cluster)."""
        return self.tags.get(TAG_KIND, "")

    @property
    def identity(self):
        """What makes two specs the same app: their tags (their name, for an untagged app)."""
        return tuple(sorted(self.tags.items())) if self.tags else self.name

    @classmethod
    def from_record(cls, record: dict) -> AppSpec:
        """A spec as a platform recorded it (``asdict``, with the node's ``ip`` where it
        chose one); one recorded before specs had tags (with a ``role``, or only its
        launcher's) gets the tags its name said."""
        record = {k: v for k, v in record.items() if k != "ip"}
        role = record.pop("role", "") or record.get("env", {}).get("RAYDEPLOY_ROLE", "")
        if "tags" not in record:
            record["tags"] = legacy_tags(record["name"], role)
        return cls(**record)


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


@dataclass(frozen=True)
class ForeignRay:
    """Ray running on one of the platform's hosts that this tool did not start: the
    processes of one session there (pid, kernel start time, command), as seen."""
    host: str
    session: int
    processes: tuple  # ((pid, start, command), ...), by pid

    @property
    def first(self) -> tuple:
        """What started the session (its leader) when it still runs, else the lowest pid
        (pids wrap around: the lowest is not always the oldest)."""
        return next((p for p in self.processes if p[0] == self.session), self.processes[0])


@dataclass(frozen=True)
class Ran:
    """How a command run on a node ended: its exit code (None: it ran out of time, and was
    killed) and the end of its output (stdout and stderr)."""
    code: int | None
    output: str

    OUTPUT_CHARS: ClassVar[int] = 4000  # the end of the output that is kept

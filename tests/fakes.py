"""Fakes behind the real interfaces, for fast tests: a clock that moves only when told, a
platform and a Ray dashboard in memory (planners run against them in milliseconds)."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from checkpoints import BY_NAME
from checkpoints.access import Actor
from checkpoints.base import Checkpoint
from checkpoints.errors import CheckpointFailed
from checkpoints.factory import make_context
from checkpoints.orchestrator import Orchestrator
from checkpoints.plan import Action, Kind, Plan
from cluster.config import parse_config
from cluster.layout import LAYOUT_KEY
from cluster.platforms.base import Platform, existing
from cluster.platforms.records import RUNNING, App, AppSpec, Job, JobRun, JobSpec, Project, legacy_tags
from core.errors import NotFound

ROOT = Path(__file__).resolve().parents[1]  # the checkout, wherever it is
CONFIGURED = {"name": "hello", "import_path": "examples.apps.hello:app", "route_prefix": "/hello"}


class FakeClock:
    """``core.timing.Clock`` without real time: ``sleep`` advances it at once."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- a platform and a Ray dashboard, in memory ---------------------------------------------------
class FakeNodes(Platform):
    """A platform of nodes only (the interface's defaults for a project, jobs and files),
    over a dict: apps get loopback addresses as on the local platform; nothing runs."""
    name = "fake"
    shares_host_network = True

    def __init__(self, config=None):
        super().__init__(config)
        self.apps: dict[str, App] = {}
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)

    def add_app(self, name: str, cpu=1.0, memory=1.0, gpus=0, status=RUNNING, ip=None,
                env=None, tags=None) -> App:
        """An app; without ``tags``, those the tool gives an app of that name (``rd-head``,
        ``rd-worker-2``, ``rd-prometheus``; none for another name)."""
        n = next(self._ids)
        if tags is None:
            tags = next((t for kind in ("head", "worker", "prometheus")
                         if (t := legacy_tags(name, kind))), {})
        app = App(id=f"app-{n}", name=name, status=status,
                  spec=AppSpec(name=name, script="cluster/launcher.py", cpu=cpu, memory=memory,
                               gpus=gpus, env=env or {}, tags=tags),
                  ip=ip or f"127.0.0.{n + 1}", created_at=float(next(self._clock)))
        self.apps[app.id] = app
        return app

    def list_apps(self):
        return list(self.apps.values())

    def create_app(self, spec: AppSpec) -> App:
        found = existing(spec, [(a, a.spec) for a in self.apps.values()])
        return found or self.add_app(spec.name, spec.cpu, spec.memory, spec.gpus, env=spec.env,
                                        tags=spec.tags)

    def get_app(self, app_id):
        if app_id not in self.apps:
            raise NotFound(f"application {app_id} not found")
        return self.apps[app_id]

    def stop_app(self, app_id, grace_seconds=5.0):
        self.apps[app_id] = replace(self.get_app(app_id), status="stopped")

    def delete_app(self, app_id):
        self.apps.pop(app_id, None)


class FakePlatform(FakeNodes):
    """FakeNodes with a project, jobs and files (as CML has them). Tests shape the world
    through ``add_app`` and ``runs``."""
    has_jobs = has_project_files = True

    def __init__(self, config=None):
        super().__init__(config)
        self.jobs: dict[str, Job] = {}
        self.runs: dict[str, list[JobRun]] = {}
        self.files: dict[str, str] = {}
        self.project: Project | None = None

    # projects
    def find_project(self, name):
        return self.project if self.project and self.project.name == name else None

    def create_project(self, name):
        self.project = self.project or Project(id="proj-1", name=name)
        return self.project

    # jobs
    def list_jobs(self):
        return list(self.jobs.values())

    def create_job(self, spec: JobSpec, parent_id=None) -> Job:
        job = Job(id=f"job-{next(self._ids)}", name=spec.name, spec=spec)
        self.jobs[job.id] = job
        return job

    def update_job(self, job_id, spec, parent_id=None):
        self.jobs[job_id] = replace(self.jobs[job_id], spec=spec)
        return self.jobs[job_id]

    def start_job_run(self, job_id, spec_hash):
        run = JobRun(id=f"run-{next(self._ids)}", job_id=job_id, status="running",
                     spec_hash=spec_hash, created_at=float(next(self._clock)))
        self.runs.setdefault(job_id, []).insert(0, run)
        return run

    def get_job_run(self, job_id, run_id):
        return next(r for r in self.runs.get(job_id, []) if r.id == run_id)

    def job_runs(self, job_id):
        return list(self.runs.get(job_id, []))

    # files
    def write_file(self, path, content):
        self.files[path] = content

    def read_file(self, path):
        return self.files.get(path)

    def delete_file(self, path):
        self.files.pop(path, None)


@dataclass
class FakeRay:
    """What the dashboard reports: nodes, usage, actors, jobs and Serve, set by the test."""
    nodes: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    actors: list[dict] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    serve: dict = field(default_factory=dict)  # name -> application status (as Ray's GET)
    healthy: bool = True
    puts: list[dict] = field(default_factory=list)
    silent: set = field(default_factory=set)  # paths the Serve proxy does not answer
    http_options: dict | None = None  # where Serve says its proxy listens (Ray's GET)
    # Ray jobs submitted through the Jobs API: id -> {status, logs}; ``job_end`` is how a
    # submitted job ends (its driver runs no code here: the validation job's result line
    # names every ALIVE node but the ``taskless`` ones)
    submitted: dict = field(default_factory=dict)
    job_end: tuple = ("SUCCEEDED", "")
    taskless: set = field(default_factory=set)
    task_secrets: list = field(default_factory=list)  # platform secrets the tasks found

    def probe(self, path: str, timeout: float = 3.0) -> tuple[bool, str]:
        """Stands in for ServeManager.probe (an HTTP GET through the proxy)."""
        return path not in self.silent, f"GET {path}: " + ("no answer" if path in self.silent else "200")

    def node(self, app: App, cpu: float | None = None, head: bool = False, alive=True,
             gpus: float = 0) -> str:
        node_id = f"node-{app.name}"
        resources = {"CPU": app.spec.cpu if cpu is None else cpu, "memory": 1e9}
        if gpus:
            resources["GPU"] = gpus
        self.nodes.append({"node_id": node_id, "node_ip": app.ip, "is_head_node": head,
                           "state": "ALIVE" if alive else "DEAD",
                           "resources_total": resources})
        return node_id

    def replica(self, node_id: str, app: str, deployment: str = "D", cpu: float = 1.0):
        self.actors.append({"actor_id": f"actor-{len(self.actors)}", "node_id": node_id,
                            "class_name": f"ServeReplica:{app}:{deployment}", "state": "ALIVE",
                            "required_resources": {"CPU": cpu}})

    def app(self, name: str, route_prefix: str, import_path: str = "pkg.mod:app",
            status: str = "RUNNING", **config):
        self.serve[name] = {"status": status, "route_prefix": route_prefix, "message": "",
                            "deployed_app_config": {"name": name, "import_path": import_path,
                                                    "route_prefix": route_prefix, **config},
                            "deployments": {}}

    def client(self, url, token):
        return FakeDashboard(self, url)


class FakeDashboard:
    """``cluster.dashboard.DashboardClient``'s interface over a FakeRay."""

    def __init__(self, ray: FakeRay, url: str):
        self.ray, self.url = ray, url

    def healthy(self):
        return self.ray.healthy

    def nodes(self):
        return [dict(n) for n in self.ray.nodes]

    def usage_by_node(self):
        return self.ray.usage

    def actors(self):
        return list(self.ray.actors)

    def jobs(self):
        return list(self.ray.jobs) + [{"submission_id": k, "status": v["status"],
                                       "metadata": v["metadata"], "end_time": v.get("end_time")}
                                      for k, v in self.ray.submitted.items()]

    def submit_job(self, entrypoint, submission_id, metadata):
        from cluster.job_check import MARK
        alive = [n["node_id"] for n in self.ray.nodes if n["state"] == "ALIVE"]
        answered = [n for n in alive if n not in self.ray.taskless]
        status, log = self.ray.job_end
        logs = log or MARK + json.dumps({"alive": alive, "answered": answered,
                                         "secrets": self.ray.task_secrets}) + "\n"
        self.ray.submitted[submission_id] = {"status": status, "logs": logs,
                                             "entrypoint": entrypoint, "metadata": metadata}

    def job(self, submission_id):
        return {"status": self.ray.submitted[submission_id]["status"], "message": "ended"}

    def job_logs(self, submission_id):
        return self.ray.submitted[submission_id]["logs"]

    def stop_job(self, submission_id):
        self.ray.submitted[submission_id]["status"] = "STOPPED"

    def delete_job(self, submission_id):
        del self.ray.submitted[submission_id]

    def serve_applications(self):
        return {"applications": dict(self.ray.serve), "http_options": self.ray.http_options}

    def put_serve(self, config):
        self.ray.puts.append(config)

    def version(self):
        return {"ray_version": "fake"}


# -- a world of them: a context whose platform and Ray are fakes ---------------------------------
@dataclass
class World:
    ctx: object
    platform: FakePlatform
    ray: FakeRay
    head_node: str | None

    def worker(self, n: int, cpu=1.0, memory=1.0, gpus=0, status="running", alive=True):
        app = self.platform.add_app(f"rd-worker-{n}", cpu, memory, gpus, status=status)
        node = self.ray.node(app, alive=alive) if status == "running" else None
        return app, node

    def plan(self, checkpoint: str):
        return BY_NAME[checkpoint].plan(self.ctx)


def world(tmp_path, with_head=True, workers=None, apps=(CONFIGURED,), mgmt=False,
          head_cpu=1, **config) -> World:
    doc = {"cluster_name": "rd", "state_dir": str(tmp_path / "s"), "project_dir": str(ROOT),
           "workers": {"count": 2, "cpu": 1, "memory": 1, **(workers or {})},
           "head": {"cpu": head_cpu, "memory": 1},
           "serve": {"applications": list(apps), "management_api": {"enabled": mgmt}}, **config}
    cfg = parse_config(doc, environ={})
    platform, ray = FakePlatform(cfg), FakeRay()
    ctx = make_context(cfg, platform=platform, dashboard_factory=ray.client)
    ctx.cluster.serve.probe = ray.probe  # no proxy to GET through
    head_node = None
    if with_head:
        head_app = platform.add_app("rd-head", 1, 1)
        head_node = ray.node(head_app, head=True)
        ctx.store.kv.set(LAYOUT_KEY, {"port": 6379, "dashboard_port": 8265, "serve_port": 8000,
                                      "client_port": 10001, "agent_port": 52365,
                                      "worker_ports": [26000, 26099]})
    return World(ctx, platform, ray, head_node)


JOBS = ("jobs:\n  - {name: a, script: jobs/git_sync.py}\n"
        "  - {name: b, script: jobs/git_sync.py, parent_job_key: a}\n")


def job_world(tmp_path, **config):
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    return world(tmp_path, jobs_config=str(path), **config)


def succeed_all(w):
    from checkpoints.steps.job_creation import desired_jobs, run_key
    for spec in desired_jobs(w.ctx):
        job = next(j for j in w.platform.jobs.values() if j.name == spec.name)
        w.platform.runs[job.id] = [JobRun(id=f"r-{job.id}", job_id=job.id, status="succeeded",
                                          spec_hash=run_key(w.ctx, spec))]


# -- small scripted checkpoints, and a run of them through the real orchestrator ----------------
ALICE = Actor("alice", "cli")  # single-user mode: every role


class Scripted(Checkpoint):
    """Plans what ``state`` says is missing; apply fixes it; verify checks it."""

    def __init__(self, name, state, kind="create", fail_apply=False):
        self.name, self.state, self.kind, self.fail_apply = name, state, kind, fail_apply
        self.applied = 0

    def plan(self, ctx):
        if self.state.get(self.name):
            return Plan(self.name)
        return Plan(self.name, (Action(Kind(self.kind), "thing", self.name,
                                       {"n": self.state.get("n", 1)}),))

    def apply(self, ctx, plan):
        self.applied += 1
        if self.fail_apply:
            raise CheckpointFailed(f"{self.name} broke")
        self.state[self.name] = True

    def verify(self, ctx):
        return [] if self.state.get(self.name) else [f"{self.name} missing"]


def run(ctx, steps, gatekeeper=lambda req: "pending", run_record=None):
    orch = Orchestrator(ctx, gatekeeper, {s.name: s for s in steps})
    orch.acquire()
    try:
        if run_record is None:
            run_record = orch.create_run("deploy", [s.name for s in steps], ALICE)
        else:
            run_record = orch.resume(orch.resumable_run(run_record.id), ALICE)
        return orch.execute(run_record)
    finally:
        orch.release()


def summary(plan) -> list[tuple[str, str | None]]:
    """A plan's actions as (kind, name or count), for tables of expected plans."""
    return [(str(a.kind), a.name or str(a.details.get("count"))) for a in plan.actions]

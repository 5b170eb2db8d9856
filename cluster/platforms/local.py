"""The local platform: every app and job run is a process on this machine.

Each app runs in its own process group (so stopping it stops every Ray process it started)
with its own loopback address, handed to it as ``RAYDEPLOY_NODE_ADDRESS`` (the CML
simulator, built on this, hands it over as ``CDSW_IP_ADDRESS``, as CML hands a pod its IP).
Records live in the store, so a later process (the next CLI run, the API server) sees and
stops apps that an earlier one started. Logs go to files in the state dir.
"""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from cluster import job_runner, processes
from cluster.platforms.base import Platform, PlatformError, existing
from cluster.platforms.recorded_jobs import RecordedJobs
from cluster.platforms.records import FAILED, LIVE, RUNNING, STARTING, STOPPED, App, AppSpec, JobSpec, Project
from cluster.ports import pick_loopback
from core import crashpoints
from core.errors import DomainError, NotFound
from store import Store, new_id

ADOPT_KEY = "RAYDEPLOY_LOCAL_APP_ID"  # in every app's environment: finds it if its pid was lost
PROJECT_KEY = "local.project"
# What node and job processes inherit from the deployer's environment: enough to run Python
# and find tools. Nothing else: the deployer's secrets (CML_API_KEY, API tokens, a cloud
# login) must not reach user code running in Serve replicas and jobs.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
             "VIRTUAL_ENV", "SHELL")

calls = logging.getLogger("raydeploy.platform")  # one line per call (the CLI's --verbose)


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}


class LocalPlatform(RecordedJobs, Platform):
    name = "local"
    shares_host_network = True  # every node on one machine: ports must not collide
    on_this_machine = True
    has_project_files = True  # a directory of the state dir

    @classmethod
    def create(cls, config, store: Store) -> LocalPlatform:
        return cls(store, config.project_dir, config.state_dir, config=config)

    def __init__(self, store: Store, project_dir: Path, state_dir: Path,
                 files_dir: Path | None = None, extra_env: dict | None = None,
                 project_id: str | None = None, config=None,
                 address_env: str = "RAYDEPLOY_NODE_ADDRESS"):
        """``project_id`` adopts a project made elsewhere (the CML simulator's), instead of
        the one ``create_project`` records in the store; ``address_env``: the variable an
        app finds its address in."""
        super().__init__(config)
        self.store = store
        self._project_id = project_id
        self.project_dir = Path(project_dir)
        self.workspace = Path(state_dir) / "project"
        # project files shared by every app (CML: the project directory itself)
        self.files_dir = Path(files_dir) if files_dir else self.workspace / "files"
        self.extra_env = dict(extra_env or {})  # e.g. the variables a CML workload gets
        self.address_env = address_env
        self.logs_dir = Path(state_dir) / "logs"
        self._lock = threading.Lock()  # address allocation among this process's threads

    def check(self) -> list[str]:
        if not self.project_dir.is_dir():
            return [f"project directory {self.project_dir} does not exist"]
        return []

    # -- project ----------------------------------------------------------------------------
    def find_project(self, name: str) -> Project | None:
        record = self.store.kv.get(PROJECT_KEY)
        if record and record["name"] == name and self.files_dir.is_dir():
            return Project(id=record["id"], name=name)
        return None

    def create_project(self, name: str) -> Project:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        record = {"id": new_id("proj"), "name": name, "source": str(self.project_dir)}
        self.store.kv.set(PROJECT_KEY, record)
        crashpoints.wrote()
        return Project(id=record["id"], name=name)

    @property
    def project_id(self) -> str:
        if self._project_id:
            return self._project_id
        record = self.store.kv.get(PROJECT_KEY)
        return record["id"] if record else "local"

    # -- project files ---------------------------------------------------------------------------
    def write_file(self, path: str, content: str) -> None:
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, target)
        crashpoints.wrote()

    def read_file(self, path: str) -> str | None:
        try:
            return self._file(path).read_text()
        except FileNotFoundError:
            return None

    def delete_file(self, path: str) -> None:
        self._file(path).unlink(missing_ok=True)

    def _file(self, path: str) -> Path:
        target = (self.files_dir / path).resolve()
        if not target.is_relative_to(self.files_dir.resolve()):
            raise PlatformError(f"project file path {path!r} leaves the project")
        return target

    # -- applications -----------------------------------------------------------------------------
    def list_apps(self) -> list[App]:
        return [self._app(r) for r in self.store.platform_records.apps()]

    def get_app(self, app_id: str) -> App:
        record = self.store.platform_records.app(app_id)
        if record is None:
            raise NotFound(f"application {app_id} not found")
        return self._app(record)

    def create_app(self, spec: AppSpec) -> App:
        # the records as stored: their status (a /proc look-up each) is not needed here, and
        # hundreds of apps made at once would otherwise each look up every other one
        found = existing(spec, [(r, AppSpec.from_record(r["spec"]))
                                for r in self.store.platform_records.apps()])
        if found is not None:
            return self._app(found)
        if not (self.project_dir / spec.script).is_file():
            raise PlatformError(f"cannot start application {spec.name}: its script {spec.script} "
                                f"is not in the project directory {self.project_dir}")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            taken = {r["spec"]["ip"] for r in self.store.platform_records.apps() if r["spec"].get("ip")}
            ip = self._place(spec.name, taken)
            record = {"id": new_id("app"), "name": spec.name, "status": STARTING,
                      "spec": {**asdict(spec), "ip": ip}, "created_at": time.time()}
            self.store.platform_records.put_app(record)  # recorded before the process exists
        env = {**self._environment(ip, spec.env), ADOPT_KEY: record["id"]}
        try:
            with open(self.logs_dir / f"{spec.name}.log", "ab") as log:
                proc = self._start(spec.name, [sys.executable, spec.script], env, log)
        except (OSError, DomainError) as e:
            record["status"] = FAILED
            self.store.platform_records.put_app(record)
            self._release(spec.name)
            raise PlatformError(f"could not start application {spec.name}: {e}") from None
        crashpoints.unrecorded()
        try:
            record.update(pid=proc.pid, pid_start=processes.start_time(proc.pid), status=RUNNING)
            self.store.platform_records.put_app(record)
        except BaseException:  # not recorded: nothing would ever find (and stop) the process
            processes.stop_session(proc.pid, grace_seconds=1)
            raise
        crashpoints.wrote()
        calls.debug("local start application %s on %s -> pid %d", spec.name, ip, proc.pid)
        return self._app(record)

    def stop_app(self, app_id: str, grace_seconds: float = 5.0) -> None:
        record = self.store.platform_records.app(app_id)
        if record is None:
            raise NotFound(f"application {app_id} not found")
        if record["pid"] and processes.session_alive(record["pid"]) and self._owned(record):
            processes.stop_session(record["pid"], grace_seconds)
            calls.debug("local stop application %s -> pid %d stopped", record["name"], record["pid"])
        self._release(record["name"])
        record.update(status=STOPPED, stopped_at=time.time())
        self.store.platform_records.put_app(record)
        crashpoints.wrote()

    def delete_app(self, app_id: str) -> None:
        self.stop_app(app_id)
        self.store.platform_records.delete_app(app_id)

    def app_log_tail(self, app: App, lines: int = 15) -> str:
        try:
            return "\n".join((self.logs_dir / f"{app.name}.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return ""

    def _owned(self, record: dict) -> bool:
        """The recorded pid is still the process we started (its group may outlive it)."""
        alive_start = processes.start_time(record["pid"])
        return alive_start is None or alive_start == record["pid_start"]

    def _app(self, record: dict) -> App:
        status = record["status"]
        if status == STARTING and not record["pid"] and time.time() - record["created_at"] > 5:
            # the process that started it died between the start and recording the pid
            pid = processes.find_session_leader(ADOPT_KEY, record["id"])
            record.update(pid=pid, pid_start=processes.start_time(pid) if pid else None,
                          status=RUNNING if pid else FAILED)
            self.store.platform_records.put_app(record)
            status = record["status"]
        if status in LIVE and record["pid"] and not processes.is_ours(record["pid"],
                                                                       record["pid_start"]):
            status = FAILED
        return App(id=record["id"], name=record["name"], status=status,
                   spec=AppSpec.from_record(record["spec"]), ip=record["spec"].get("ip"),
                   created_at=record["created_at"])

    # -- where processes run (the CML simulator's pods override these) ----------------------------
    def _place(self, name: str, taken: set[str]) -> str:
        """The address of a new app: a loopback address nobody uses."""
        return pick_loopback(taken)

    def _environment(self, ip: str | None, own: dict) -> dict:
        """The environment of an app (``ip``: its address) or job run with its ``own``
        variables: enough to run Python, where the project files are, its address. Never the
        deployer's secrets."""
        env = {**inherited_env(), **own, "RAYDEPLOY_PROJECT_FILES": str(self.files_dir),
               **self.extra_env, "PYTHONPATH": str(self.project_dir)}
        return {**env, self.address_env: ip} if ip else env

    def _start(self, name: str, argv: list[str], env: dict, stdout, run_dir: Path | None = None
               ) -> subprocess.Popen:
        """Start an app's (or a job run's) process, in a session of its own, in the project."""
        return subprocess.Popen(argv, cwd=self.project_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)

    def _run_dir(self, run_dir: Path) -> str:
        """Where a job run's process finds its run directory."""
        return str(run_dir)

    def _release(self, name: str) -> None:
        """An app or job run ``name`` ended: what held its place may go (nothing here)."""

    # -- jobs -------------------------------------------------------------------------------------
    def _start_run(self, spec: JobSpec, run_id: str) -> dict:
        run_dir = self.logs_dir / "jobs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment(None, spec.environment)
        command = [sys.executable, job_runner.__file__, self._run_dir(run_dir), str(spec.timeout),
                   "--", sys.executable, spec.script, *shlex.split(spec.arguments)]
        proc = self._start(run_id, command, env, subprocess.DEVNULL, run_dir=run_dir)
        calls.debug("local run job %s -> pid %d", spec.name, proc.pid)
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it ends
        return {"pid": proc.pid, "pid_start": processes.start_time(proc.pid),
                "log_path": str(run_dir / "output.log")}

    def job_run_log(self, run_id: str) -> str:
        record = self.store.platform_records.run(run_id)
        try:
            return Path(record["log_path"]).read_text()[-4000:] if record else ""
        except OSError:
            return ""

    def _settle(self, record: dict) -> tuple[str, int | None] | None:
        result = Path(record["log_path"]).with_name("result")
        if result.exists():  # written by cluster.job_runner as its last act
            status, _, code = result.read_text().partition(" ")
            ended = status, int(code)
        elif not processes.is_ours(record["pid"], record["pid_start"]):
            ended = "failed", None  # died without a result
        else:
            return None
        self._release(record["id"])
        return ended


def stop_recorded_apps(state_dir: Path) -> None:
    """Last-resort cleanup: stop every app process group the store of ``state_dir`` records
    (ours only: no process it did not start)."""
    if not (Path(state_dir) / "state.db").exists():
        return
    for app in Store(state_dir).platform_records.apps():  # the local platform's own rows (dicts)
        if app["pid"] and processes.session_alive(app["pid"]):
            processes.stop_session(app["pid"], grace_seconds=1)

"""The ssh platform (``platform: ssh``): nodes on machines you already have, reached over SSH.

One node per host: the head on the inventory's head, each worker on a worker host of its
own (Prometheus beside the head). The project is copied to every host
(``<remote_dir>/<cluster>/project``); the environment jobs run on every host at once
(setup_environment builds the venv there from the configured package index or wheelhouse),
and a job run succeeds when it succeeded on each. Nodes start under that venv in a session
of their own, detached from the SSH session, recorded with the pid and kernel start time
they have on their host, and are stopped only through that record (never ``ray stop``,
never a process this tool did not start). The project files (the head's address, the Ray
version the jobs found) are the head host's. Ray processes already on a host that this tool
did not start, and ports taken, are problems ``check`` names (host, pid, command).
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from cluster.platforms.base import Platform, PlatformError, existing
from cluster.platforms.records import FAILED, LIVE, RUNNING, STARTING, STOPPED, App, AppSpec, Project, Ran
from cluster.platforms.ssh import inventory, settings
from cluster.platforms.ssh.jobs import SSHJobs
from cluster.platforms.ssh.project import Remote, project_archive
from cluster.platforms.ssh.runner import Host, Process, SSHError, SSHRunner
from cluster.platforms.ssh.survey import SSHHostsSurvey
from core import crashpoints
from core.errors import NotFound
from core.timing import SYSTEM_CLOCK, Clock
from store import Store, new_id

ADOPT_KEY = "RAYDEPLOY_SSH_APP_ID"  # in every node's environment: finds it if its pid was lost
PROJECT_KEY = "ssh.project"
ADOPT_AFTER = 5.0  # seconds a record may stay without a pid before its host is searched
# seconds a node seen running is taken to run without asking its host again: waits poll
# every 0.1 s, and each ask starts Python on the host (measured: 14 a second on 4 hosts
# during a deploy, CPU the starting Ray nodes had to share; 4 a second with 1 s here). A
# node that ends while a wait goes on is seen this much later at most.
SEEN_FOR = 3.0


class SSHPlatform(SSHHostsSurvey, SSHJobs, Platform):
    name = "ssh"
    has_own_hosts = True  # other work runs there: Ray it did not start is seen (host_cleanup)
    beside_head = True  # Prometheus runs on the head host (``_place``)
    has_project_files = True  # the head host's
    settings_section = "ssh"
    settings_schema = settings.SSHSchema
    required_when_selected = staticmethod(settings.required_when_selected)

    @classmethod
    def create(cls, config, store: Store) -> SSHPlatform:
        return cls(config, store)

    def __init__(self, config, store: Store, runner: SSHRunner | None = None,
                 clock: Clock = SYSTEM_CLOCK):
        super().__init__(config)
        self.store = store
        self.settings = s = config.platform_settings[self.settings_section]
        base = Path(config.base_dir)
        self.hosts = (inventory.load_inventory(_local(s.inventory, base)) if s.inventory
                      else inventory.from_config(list(s.hosts)))
        self.head = next(h for h in self.hosts if h.role == "head")
        self.runner = runner or SSHRunner(_local(s.known_hosts, base),
                                          _local(s.identity_file, base) if s.identity_file else None,
                                          connect_timeout=s.connect_timeout_seconds)
        self._remote: dict[str, Remote] = {}  # host name -> its directories (its home read once)
        self._pushed: dict[str, str] = {}  # host name -> the project digest it has
        self._seen: dict[str, float] = {}  # app id -> when its process was last seen running
        self.clock = clock
        self._lock = threading.Lock()

    # -- hosts ---------------------------------------------------------------------------------
    def login(self, host: inventory.SSHHost) -> Host:
        s = self.settings
        return Host(host.name, host.address, user=host.user or s.user, port=host.port or s.port,
                    identity_file=str(_local(host.identity_file, Path(self.config.base_dir)))
                    if host.identity_file else None)

    def host(self, name: str) -> inventory.SSHHost:
        found = next((h for h in self.hosts if h.name == name), None)
        if found is None:
            raise NotFound(f"host {name} is not in the inventory")
        return found

    def remote(self, host: inventory.SSHHost) -> Remote:
        """Where the cluster's files are on ``host`` (absolute: its home asked once)."""
        if host.name not in self._remote:
            home = self._run(host, ["sh", "-c", 'printf %s "$HOME"']).stdout
            self._remote[host.name] = Remote.under(home, self.settings.remote_dir,
                                                   self.config.cluster_name)
        return self._remote[host.name]

    def _run(self, host: inventory.SSHHost, argv: list[str], **kwargs):
        try:
            return self.runner.run(self.login(host), argv, **kwargs)
        except SSHError as e:
            raise PlatformError(str(e)) from None

    def _each(self, function, hosts=None) -> list:
        hosts = list(self.hosts if hosts is None else hosts)
        with ThreadPoolExecutor(max_workers=max(1, min(len(hosts), 16))) as pool:
            return list(pool.map(function, hosts))

    # -- project -------------------------------------------------------------------------------
    def find_project(self, name: str) -> Project | None:
        record = self.store.kv.get(PROJECT_KEY)
        return Project(id=record["id"], name=name) if record and record["name"] == name else None

    def create_project(self, name: str) -> Project:
        """The project's files on every host (and the wheelhouse, when there is one)."""
        self._each(self._push)
        record = {"id": new_id("proj"), "name": name, "hosts": [h.name for h in self.hosts]}
        self.store.kv.set(PROJECT_KEY, record)
        crashpoints.wrote()
        return Project(id=record["id"], name=name)

    def _push(self, host: inventory.SSHHost) -> None:
        """Copy the project to ``host`` unless it has this very content already."""
        archive, digest = project_archive(Path(self.config.project_dir), self.config.state_dir)
        if self._pushed.get(host.name) == digest:
            return
        remote = self.remote(host)
        if self._run(host, ["cat", remote.marker]).stdout.strip() != digest:
            try:
                self.runner.put(self.login(host), archive, remote.project)
                if self.settings.wheelhouse:
                    wheels, _ = project_archive(_local(self.settings.wheelhouse,
                                                       Path(self.config.base_dir)), None, False)
                    self.runner.put(self.login(host), wheels, remote.wheelhouse)
            except SSHError as e:
                raise PlatformError(str(e)) from None
            self._run(host, ["sh", "-c", 'printf %s "$2" > "$1"', "sh", remote.marker, digest])
        self._pushed[host.name] = digest

    def job_environment(self) -> dict[str, str]:
        """The jobs run in a copy made for the cluster (setup_environment builds the venv in
        it), from the configured package index, or the wheelhouse alone."""
        env = {"RAYDEPLOY_PROJECT_CLONE": "1"}
        if self.settings.package_index:
            env["PIP_INDEX_URL"] = self.settings.package_index
        if self.settings.wheelhouse:
            env["PIP_NO_INDEX"] = "1"  # PIP_FIND_LINKS: the host's copy (start_job_run)
        return env

    # -- project files (the head host's) --------------------------------------------------------
    def write_file(self, path: str, content: str) -> None:
        target = self._file(path)
        self._run(self.head, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && '
                                          'mv "$1.tmp" "$1"', "sh", target], input=content)
        crashpoints.wrote()

    def read_file(self, path: str) -> str | None:
        done = self._run(self.head, ["sh", "-c", '[ -e "$1" ] || exit 3; cat "$1"', "sh",
                                     self._file(path)])
        return done.stdout if done.returncode == 0 else None

    def delete_file(self, path: str) -> None:
        self._run(self.head, ["rm", "-f", self._file(path)])

    def _file(self, path: str) -> str:
        if path.startswith("/") or ".." in Path(path).parts:
            raise PlatformError(f"project file path {path!r} leaves the project")
        return f"{self.remote(self.head).files}/{path}"

    # -- nodes -----------------------------------------------------------------------------------
    def list_apps(self) -> list[App]:
        return self._apps(self.store.platform_records.apps())

    def get_app(self, app_id: str) -> App:
        record = self.store.platform_records.app(app_id)
        if record is None:
            raise NotFound(f"application {app_id} not found")
        return self._apps([record])[0]

    def create_app(self, spec: AppSpec) -> App:
        return self._launch(*self._reserve(spec))

    def create_apps(self, specs: list[AppSpec]) -> list[App]:
        """Hosts chosen in the order of ``specs`` (worker-1 on the first free worker host),
        then every node started at once."""
        reserved = [self._reserve(spec) for spec in specs]
        with ThreadPoolExecutor(max_workers=max(1, min(len(reserved), 16))) as pool:
            return list(pool.map(lambda r: self._launch(*r), reserved))

    def _reserve(self, spec: AppSpec) -> tuple[dict, AppSpec, inventory.SSHHost | None]:
        """The app's record, made (before its process exists) on the host chosen for it;
        the host is None when an app with its tags exists already (a retry)."""
        with self._lock:  # a host is chosen by one thread at a time
            records = self.store.platform_records.apps()
            found = existing(spec, [(r, AppSpec.from_record(r["spec"])) for r in records])
            if found is not None:
                return found, spec, None
            host = self._place(spec, records)
            record = {"id": new_id("app"), "name": spec.name, "status": STARTING,
                      "spec": {**asdict(spec), "ip": host.address}, "host": host.name,
                      "pid": None, "pid_start": None, "created_at": time.time()}
            self.store.platform_records.put_app(record)
        return record, spec, host

    def _launch(self, record: dict, spec: AppSpec, host: inventory.SSHHost | None) -> App:
        if host is None:
            return self._apps([record])[0]
        try:
            self._push(host)
            remote = self.remote(host)
            env = {**spec.env, **self._node_env(host, spec, remote), ADOPT_KEY: record["id"]}
            started = self.runner.start(self.login(host), [self.settings.python, spec.script],
                                        log=f"{remote.logs}/{spec.name}.log", env=env,
                                        cwd=remote.project)
        except (SSHError, PlatformError) as e:
            record["status"] = FAILED
            self.store.platform_records.put_app(record)
            raise PlatformError(f"could not start {spec.name} on {host.name}: {e}") from None
        crashpoints.unrecorded()
        record.update(pid=started.pid, pid_start=started.start, status=RUNNING)
        self.store.platform_records.put_app(record)
        crashpoints.wrote()
        return self._apps([record])[0]

    def stop_app(self, app_id: str, grace_seconds: float = 5.0) -> None:
        record = self.store.platform_records.app(app_id)
        if record is None:
            raise NotFound(f"application {app_id} not found")
        if record["pid"]:
            try:
                self.runner.stop(self.login(self.host(record["host"])),
                                 Process(record["host"], record["pid"], record["pid_start"]),
                                 grace_seconds)
            except SSHError as e:  # the record stays: the node may still run there
                raise PlatformError(f"could not stop {record['name']}: {e}") from None
        record.update(status=STOPPED, stopped_at=time.time())
        self.store.platform_records.put_app(record)
        crashpoints.wrote()

    def delete_app(self, app_id: str) -> None:
        self.stop_app(app_id)
        self.store.platform_records.delete_app(app_id)
        self._seen.pop(app_id, None)

    def run_on_node(self, app: App, argv: list[str], env: dict[str, str] | None = None,
                    timeout: float = 60.0) -> Ran:
        """On the app's host, in the project's copy there; ``python`` is the venv's (the
        interpreter the launcher runs a node under), or the configured one without it."""
        record = self.store.platform_records.app(app.id)
        if record is None:
            raise NotFound(f"application {app.id} not found")
        host = self.host(record["host"])
        try:
            remote = self.remote(host)
            done = self.runner.execute(self.login(host), argv, env, remote.project, timeout,
                                       python=(f"{remote.venv}/bin/python", self.settings.python),
                                       keep=Ran.OUTPUT_CHARS)
        except SSHError as e:
            raise PlatformError(f"could not run {argv[0]} for {app.name}: {e}") from None
        return Ran(done["code"], done["output"])

    def head_files(self, directory: str, suffix: str) -> dict[str, str]:
        try:
            return self.runner.files(self.login(self.head), directory, suffix)
        except SSHError as e:
            raise PlatformError(str(e)) from None

    def host_of(self, app: App) -> str | None:
        record = self.store.platform_records.app(app.id)
        return record["host"] if record else None

    def app_log_tail(self, app: App, lines: int = 15) -> str:
        record = self.store.platform_records.app(app.id)
        if record is None:
            return ""
        try:
            host = self.host(record["host"])
            return self._run(host, ["tail", "-n", str(lines),
                                    f"{self.remote(host).logs}/{app.name}.log"]).stdout
        except PlatformError as e:
            return str(e)

    def hosts_for_workers(self, count: int, leaving: list[App] = ()) -> list[str]:
        gone = {a.id for a in leaving}
        records = [r for r in self.store.platform_records.apps() if r["id"] not in gone]
        return [h.name for h in self._free(records)[:count]]

    def _free(self, records: list[dict]) -> list[inventory.SSHHost]:
        """The worker hosts no worker of ``records`` holds, in the inventory's order."""
        held = {r["host"] for r in records if AppSpec.from_record(r["spec"]).role == "worker"}
        return [h for h in self.hosts if h.role == "worker" and h.name not in held]

    def _place(self, spec: AppSpec, records: list[dict]) -> inventory.SSHHost:
        """The head (and Prometheus) on the head host; a worker on a worker host no other
        worker of this cluster holds."""
        if spec.role != "worker":
            return self.head
        free = self._free(records)
        if not free:
            workers = [h.name for h in self.hosts if h.role == "worker"]
            raise PlatformError(f"no worker host is free for {spec.name}: every one of "
                                f"{', '.join(workers) or '(none)'} runs a worker already")
        return free[0]

    def _node_env(self, host: inventory.SSHHost, spec: AppSpec, remote: Remote) -> dict:
        """What a node on ``host`` is told of it: its address, the venv, the project files;
        the host's own resources where the inventory gives them."""
        env = {"RAYDEPLOY_NODE_ADDRESS": host.address, "RAYDEPLOY_VENV": remote.venv,
               "RAYDEPLOY_PROJECT_FILES": remote.files}
        if host.resources and "RAYDEPLOY_RAY_ARGS" in spec.env:
            args = json.loads(spec.env["RAYDEPLOY_RAY_ARGS"])
            given = host.resources
            if "cpu" in given:
                args["num_cpus"] = given["cpu"]
            if "gpus" in given and "num_gpus" in args:
                args["num_gpus"] = given["gpus"]
            if "memory" in given:
                args["memory"] = int(given["memory"] * 1024 ** 3)
            env["RAYDEPLOY_RAY_ARGS"] = json.dumps(args, sort_keys=True)
        return env

    def _apps(self, records: list[dict]) -> list[App]:
        """Records as apps, the status of the live ones asked of their hosts (one round
        trip per host, all hosts at once)."""
        fresh = self.clock.monotonic() - SEEN_FOR
        now = {r["id"]: RUNNING for r in records
               if r["status"] == RUNNING and self._seen.get(r["id"], fresh) > fresh}
        live = [r for r in records if r["status"] in LIVE and r["id"] not in now]
        names = sorted({r["host"] for r in live})
        for found in self._each(lambda h: self._refresh(h, [r for r in live if r["host"] == h.name]),
                                [h for h in self.hosts if h.name in names]):
            now.update(found)
        apps = []
        for record in records:
            status = now.get(record["id"], FAILED) if record["status"] in LIVE else record["status"]
            apps.append(App(id=record["id"], name=record["name"], status=status,
                            spec=AppSpec.from_record(record["spec"]), ip=record["spec"].get("ip"),
                            created_at=record["created_at"]))
        return apps

    def _refresh(self, host: inventory.SSHHost, records: list[dict]) -> dict[str, str]:
        """The status of each live record of ``host``: still its process, or ended (a
        record without a pid, older than ADOPT_AFTER, is searched for by its id). A host
        that does not answer: FAILED for now, nothing recorded."""
        login, statuses = self.login(host), {}
        try:
            for record in records:
                if record["pid"] is None:
                    if time.time() - record["created_at"] < ADOPT_AFTER:
                        statuses[record["id"]] = STARTING
                        continue
                    found = self.runner.find(login, ADOPT_KEY, record["id"])
                    record.update(pid=found.pid if found else None,
                                  pid_start=found.start if found else None,
                                  status=RUNNING if found else FAILED)
                    self.store.platform_records.put_app(record)
            started = [r for r in records if r["pid"] and r["status"] in LIVE]
            alive = self.runner.alive_all(login, [Process(host.name, r["pid"], r["pid_start"])
                                                  for r in started]) if started else []
        except SSHError:
            return {r["id"]: FAILED for r in records}
        seen = self.clock.monotonic()
        for record, running in zip(started, alive, strict=True):
            statuses[record["id"]] = record["status"] if running else FAILED
            if running:
                self._seen[record["id"]] = seen
            else:
                record.update(status=FAILED)
                self.store.platform_records.put_app(record)
        statuses.update({r["id"]: FAILED for r in records if r["status"] == FAILED})
        return statuses


def _local(path: str, base: Path) -> Path:
    """A path of this machine's from the config: ``~`` expanded, relative to the config."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else base / expanded

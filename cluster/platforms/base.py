"""Where cluster nodes run: the ``Platform`` base class (the records it speaks in: ``records``).

A platform provides nodes (applications: created with resources and tags, listed by tag,
stopped, deleted; each with its address where the platform knows it up front) and runs a
command where a node runs. An app's tags are its identity (what Ray's NodeProvider calls
tags: the cluster, the kind of node, the worker's index); its name is for people and the
platform (unique in a CML project), made from the tags by the caller.

A project, jobs (with runs) and project files that every node reads are optional: CML has
exactly these, the local and ssh platforms make them (with processes, and on hosts), and a
platform without them gets the defaults here (nothing to make, no jobs, no files), so the
checkpoints and the cluster manager are written once.

A platform declares what it can do (capabilities, with defaults here) and owns its config
section (``settings_section``/``settings_schema``, its environment overrides and older config
shapes). Code outside ``cluster/platforms/<name>`` asks capabilities, never names.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cluster.platforms.records import (
    App,
    AppSpec,
    ForeignRay,
    Job,
    JobRun,
    JobSpec,
    Project,
    Ran,
)
from core.errors import Invalid, NotFound, Unavailable

if TYPE_CHECKING:
    from marshmallow import Schema

    from store import Store


class PlatformError(Unavailable):
    """A platform call failed; the message names the call and the resource, never a secret."""


class ConfigShapeError(Invalid):
    """An older config shape with fields nobody knows; ``errors``: dotted path -> messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def existing(spec: AppSpec, recorded: list[tuple[Any, AppSpec]]):
    """Of ``recorded`` ((an app as the platform keeps it, its spec), ...), the one that is
    ``spec``'s app (its tags), or None. An app's name is unique (CML's rule; the others keep
    logs and places by it): one of that name with other tags is refused (PlatformError)."""
    for item, other in recorded:
        if other.identity == spec.identity:
            return item
    if any(other.name == spec.name for _, other in recorded):
        raise PlatformError(f"cannot create application {spec.name}: an application of that "
                            f"name exists with other tags (not this one); rename or remove it")
    return None


class Platform:
    """The interface, with the defaults a platform overrides where it differs."""

    name: ClassVar[str] = ""

    # -- capabilities ----------------------------------------------------------------------
    # Every node shares one host network: ports must be allocated so they never collide.
    shares_host_network: bool = False
    # A child job starts by itself when its parent's run succeeds.
    chains_jobs: bool = False
    # Nodes and jobs are processes of this machine running ``project_dir``: what they import
    # can be checked here, and their temp dirs removed here.
    on_this_machine: bool = False
    # Variables the platform gives a node's processes that Ray's must never hold (the node
    # launcher removes them; validation's Ray job checks every node for them).
    secret_env: ClassVar[tuple[str, ...]] = ()
    # The settings that give it a control plane of its own, and nodes on one host network,
    # where it has them (said in messages: "run through the control plane (...)").
    control_plane_setting: ClassVar[str | None] = None
    one_network_setting: ClassVar[str | None] = None

    @property
    def beside_head(self) -> bool:
        """Whether the cluster's apps that are not nodes (its Prometheus) run on the head's
        host: they read the head's files (Ray's list of scrape targets) and listen at its
        address. True on one host network; a platform that places them there says so."""
        return self.shares_host_network

    # -- its config section ------------------------------------------------------------------
    settings_section: ClassVar[str | None] = None  # e.g. "cml" for a ``cml:`` section
    settings_schema: ClassVar[type[Schema] | None] = None  # marshmallow, loads the section
    env_overrides: ClassVar[dict[str, str]] = {}  # environment variable -> key in the section

    @classmethod
    def env_defaults(cls, section: dict, environ) -> dict[str, str]:
        """Fill in (in place) fields of its section that the config leaves out, from the
        environment (a config value wins, unlike ``env_overrides``); returns {key: variable}
        of those filled."""
        return {}

    @classmethod
    def map_legacy(cls, doc: dict, warnings: list[str] | None = None) -> dict:
        """Map older config shapes this platform accepts onto the current one; what people
        should know about the mapping (a default it chose) goes into ``warnings``."""
        return doc

    @classmethod
    def required_when_selected(cls, section: dict) -> dict[str, list[str]]:
        """Field errors of its section when the config selects this platform."""
        return {}

    @classmethod
    def create(cls, config: Any, store: Store) -> Platform:
        raise NotImplementedError

    @classmethod
    def published_port(cls, environ) -> tuple[int, str] | None:
        """When this process runs as one of the platform's apps, the port the platform
        publishes (a server must listen there, and it is public even on loopback), with the
        variable that said so; else None."""
        return None

    @classmethod
    def control_plane_url(cls, config: Any, digests: list[dict], say,
                          make: bool = True) -> str | None:
        """Where runs of ``config`` execute when not in the caller's process: the URL of a
        control plane the platform runs (``make``: made ready first, else found as it is;
        ``digests``: the API tokens it accepts; ``say``: progress for people), or None
        (here, the default)."""
        return None

    # -- hooks with defaults -------------------------------------------------------------------
    project_timeout_seconds: float = 900.0  # how long project_setup waits for a new project

    def __init__(self, config: Any = None):
        self.config = config

    @property
    def project_name(self) -> str:
        return self.config.cluster_name

    def check(self) -> list[str]:
        """Problems that stop a deploy (unreachable, bad credentials); empty when usable."""
        return []

    def job_environment(self) -> dict[str, str]:
        """What every environment job should know about the project it runs in."""
        return {}

    def node_environment(self) -> dict[str, str]:
        """What every node's launcher should know about where it runs (e.g. the venv the
        environment jobs built, to run in)."""
        return {}

    @classmethod
    def usage(cls) -> tuple[str, str] | None:
        """Where a cluster member's Ray token is for the platform's own sessions, and where
        the cluster is used from, when the cluster is not reachable from the caller; None
        where it is."""
        return None

    def public_url(self, app: App) -> str | None:
        """Where the platform publishes the app (CML: ``https://<subdomain>.<domain>``,
        forwarded to its ``CDSW_APP_PORT``); None where apps have no URL of their own."""
        return None

    def hosts_for_workers(self, count: int, leaving: list[App] = ()) -> list[str] | None:
        """The machines ``count`` new workers would run on, in order, once ``leaving`` went
        (plans show them); None where the platform chooses none itself."""
        return None

    def head_files(self, directory: str, suffix: str) -> dict[str, str] | None:
        """{name: text} of the files ending ``suffix`` in ``directory`` on the head's host
        (what Ray writes there: its Grafana dashboards); None where they are not at hand."""
        if not self.on_this_machine:
            return None
        path = Path(directory)
        return {f.name: f.read_text(errors="replace") for f in sorted(path.glob(f"*{suffix}"))
                if f.is_file()} if path.is_dir() else {}

    def host_of(self, app: App) -> str | None:
        """The machine the app runs on, as its operators name it (plans show it beside a
        node that goes); None where the platform names none."""
        return None

    def run_on_node(self, app: App, argv: list[str], env: dict[str, str] | None = None,
                    timeout: float = 60.0) -> Ran:
        """Run a short command where ``app``'s node runs, as the node would (``python`` as
        the first word: the interpreter its Ray runs under), ``env`` added to its
        environment (it may hold the cluster's token: it is never put on a command line),
        and wait for its end. The default runs it on this machine with this interpreter:
        where the control plane runs beside the nodes (nodes of this machine, or a control
        plane inside the platform). PlatformError when the node's machine cannot be reached."""
        argv = [sys.executable, *argv[1:]] if argv[:1] == ["python"] else list(argv)
        try:
            done = subprocess.run(argv, env={**os.environ, **(env or {})}, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
            return Ran(None, (out or "")[-Ran.OUTPUT_CHARS:])
        except OSError as e:
            raise PlatformError(f"could not run {argv[0]} for {app.name}: {e.strerror}") from None
        return Ran(done.returncode, done.stdout[-Ran.OUTPUT_CHARS:])

    def app_log_tail(self, app: App, lines: int = 15) -> str:
        """The end of an app's log, to show when it failed ("" where logs are not at hand)."""
        return ""

    def job_run_log(self, run_id: str) -> str:
        """The end of a job run's output ("" where it is not at hand)."""
        return ""

    # -- hosts of your own (what else runs there) --------------------------------------------
    # The platform's hosts are machines other work may run on (not pods or processes of its
    # own making): Ray there that this tool did not start is seen, and stopped only through
    # the gated host_cleanup operation.
    has_own_hosts: bool = False

    def foreign_ray(self, host: str | None = None) -> list[ForeignRay]:
        """Ray on its hosts (or on ``host``) that this tool did not start."""
        return []

    def stop_foreign(self, found: ForeignRay, grace_seconds: float = 5.0) -> list[int]:
        """Stop exactly the processes of ``found`` that are still the ones seen; their pids."""
        raise PlatformError(f"the {self.name} platform stops no process it did not start")

    # -- nodes: what every platform implements ------------------------------------------------
    # ``list_apps`` answers every app of the project, stopped ones too, each with the tags it
    # was created with; ``create_app`` is idempotent by the spec's tags (``AppSpec.identity``):
    # an app with them is answered as it is, after a lost answer or a crash alike.
    def list_apps(self) -> list[App]: raise NotImplementedError

    def apps_tagged(self, tags: dict[str, str]) -> list[App]:
        """The apps whose tags include ``tags`` (Ray's ``non_terminated_nodes(tag_filters)``,
        with the ended ones too). A platform that can ask for them by tag overrides it."""
        wanted = tags.items()
        return [a for a in self.list_apps() if wanted <= a.spec.tags.items()]

    def create_app(self, spec: AppSpec) -> App: raise NotImplementedError

    def create_apps(self, specs: list[AppSpec]) -> list[App]:
        """Create several apps at once (``create_app`` each, concurrently); returned in the
        order of ``specs``. A platform with a cheaper or safer way at scale overrides it."""
        if len(specs) <= 1:
            return [self.create_app(s) for s in specs]
        with ThreadPoolExecutor(max_workers=min(len(specs), 16)) as pool:
            return list(pool.map(self.create_app, specs))

    def get_app(self, app_id: str) -> App: raise NotImplementedError
    def stop_app(self, app_id: str, grace_seconds: float = 5.0) -> None: raise NotImplementedError
    def delete_app(self, app_id: str) -> None: raise NotImplementedError

    # -- optional: a project, jobs, project files (CML has all three; local and ssh make
    # them; the defaults are a platform's that has none) --------------------------------------
    # A project holds the code the nodes run (CML's project, ssh's copy on each host, the
    # local workspace). Without one, nodes run the code where they find it (in their image,
    # say): there is nothing to make.
    def find_project(self, name: str) -> Project | None:
        return Project(id=name, name=name)

    def create_project(self, name: str) -> Project:
        return Project(id=name, name=name)

    # Jobs with runs: the environment jobs of ``jobs_config``. Without them, a config that
    # lists jobs is refused at prerequisites, naming them (the nodes' environment is then
    # the platform's to provide).
    has_jobs: bool = False

    def list_jobs(self) -> list[Job]:
        return []

    def create_job(self, spec: JobSpec, parent_id: str | None) -> Job:
        raise PlatformError(f"the {self.name} platform runs no jobs (job {spec.name})")

    def update_job(self, job_id: str, spec: JobSpec, parent_id: str | None) -> Job:
        raise PlatformError(f"the {self.name} platform runs no jobs (job {spec.name})")

    def start_job_run(self, job_id: str, spec_hash: str) -> JobRun:
        raise PlatformError(f"the {self.name} platform runs no jobs (job {job_id})")

    def get_job_run(self, job_id: str, run_id: str) -> JobRun:
        raise NotFound(f"job run {run_id} of job {job_id} not found")

    def job_runs(self, job_id: str) -> list[JobRun]:
        return []

    # Files of the project every node reads and writes (what a node publishes: its address
    # where the platform does not know it up front; Prometheus's config). Without them a
    # platform knows every node's address up front (``App.ip``), and monitoring is refused
    # at prerequisites.
    has_project_files: bool = False

    def write_file(self, path: str, content: str) -> None:
        raise PlatformError(f"the {self.name} platform keeps no project files ({path})")

    def read_file(self, path: str) -> str | None:
        return None

    def delete_file(self, path: str) -> None:
        pass

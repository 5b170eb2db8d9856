"""On CML the control plane is an application in a project of its own, beside the cluster's:
``<cluster>-control`` in ``<project>-control``.

Pods are reachable only from inside the workspace, so the runs execute there: a client
anywhere the CML API reaches (a CI runner, a laptop) bootstraps the control app, then talks
only to its public URL (``https://<subdomain>.<domain>``).

Why a project of its own: every pod of a project sees (and may write) the project's files,
and the cluster's nodes run whatever code their users deploy. In the cluster's project, that
code could rewrite the control plane's store (approval records, the audit key), its config,
its venv and its source. In ``<project>-control`` the nodes see none of it; the control plane
reaches the cluster's project through the CML API only (its apps, jobs and the files the
nodes publish). What stays out of reach of this wall: a pod holds the workspace key of the
user it runs as (CML gives every workload one), and through the API that user may change
their other projects too (README, Security model).

The bootstrap:

1. finds or creates the cluster's project and the control project (both clones of
   ``cml.git_url``: the control plane runs the tool's code, and reads the project's jobs
   config and Serve modules from its own clone) and waits for them;
2. uploads the control plane's config into the control project
   (``.raydeploy-control/config.yaml``): the client's config with no secret in it (no
   ``cml.api_key``: inside CML the app takes the workspace's key from CDSW_APIV2_KEY), its
   store in its own project, the cluster's project by id;
3. finds or creates the app (``control_app.py``, its URL open to the network:
   ``bypass_authentication``, the API's tokens guard it), with the API tokens as salted
   digests only (``RAYDEPLOY_API_TOKEN_DIGESTS``): the app's environment is readable by
   every member of the project through the CML API, so no token is put there; a changed
   config or token list is uploaded again and the app restarted; a failed or stopped app is
   restarted;
4. waits until the URL answers ``/health`` for this cluster (within
   ``cml.control_timeout_seconds``, else it says so with the end of the app's log).
"""
from __future__ import annotations

import copy
import hashlib
import json

import requests
import yaml

from cluster.config.desired import DESIRED_SECTIONS
from cluster.platforms.base import PlatformError
from cluster.platforms.cml.client import environment_patch
from cluster.platforms.cml.control_app import DIGEST_ENV  # it checks its config against it
from cluster.platforms.cml.platform import ProjectMissing
from cluster.platforms.records import FAILED, RUNNING, STOPPED, AppSpec
from core.errors import Invalid, Unavailable
from core.timing import SYSTEM_CLOCK, Clock, TimedOut, poll_until

SCRIPT = "cluster/platforms/cml/control_app.py"
CONTROL_DIR = ".raydeploy-control"
CONFIG_FILE = f"{CONTROL_DIR}/config.yaml"
LOG_FILE = f"{CONTROL_DIR}/control.log"


def app_name(config) -> str:
    return f"{config.cluster_name}-control"


def control_config(config, project_id: str) -> dict:
    """The control plane's config: the client's, without secrets, its store in the project,
    and without the desired state (each run brings its own: a change of it is a run, not a
    restart of the control plane)."""
    doc = {k: v for k, v in copy.deepcopy(config.document).items() if k not in DESIRED_SECTIONS}
    cml = doc.setdefault("cml", {})
    for secret in ("api_key", "host"):  # inside CML: CDSW_APIV2_KEY and CDSW_API_URL
        cml.pop(secret, None)
    cml.update(project_id=project_id, control_plane="embedded")
    doc.update(state_dir=f"{CONTROL_DIR}/state", project_dir=".", jobs_config="jobs_config.yaml")
    api = doc.get("api") or {}
    api.pop("tokens_file", None)  # the tokens reach it as digests (see module doc)
    doc["api"] = api
    return doc


def url_for(platform_class, config, digests: list[dict], say, make: bool = True) -> str | None:
    """Where the runs of ``config`` execute (``Platform.control_plane_url``): the control
    app's URL (``make``: made or mended first; else it must exist), or None when they run in
    this process (``cml.control_plane: embedded``, or ``auto`` with every app on this host)."""
    cml = config.platform_settings[platform_class.settings_section]
    mode = cml.control_plane
    if mode == "embedded" or (mode == "auto" and cml.shared_host_network):
        return None
    if not make:
        return existing(platform_class(config), config)
    if not digests:
        raise Invalid("the control app's URL is public: give the API tokens "
                      "(RAYDEPLOY_API_TOKENS or api.tokens_file) it will accept, and "
                      "yours as RAYDEPLOY_TOKEN", field="api.tokens_file")
    return bootstrap(platform_class(config), config, digests, say)


def control_project(platform):
    """The platform on the control plane's own project (``<project>-control``)."""
    return platform.on_project(f"{platform.project_name}-control")


def ensure_project(platform, say) -> object:
    """The platform's project, made (a clone of ``cml.git_url``) when missing, once created."""
    name = platform.project_name
    project = platform.find_project(name)
    if project is None:
        say(f"control plane: creating project {name}")
        project = platform.create_project(name)
    if project.status == "creating":  # a git clone finishes later
        def created():
            current = platform.find_project(name) or project
            return current if current.status != "creating" else None
        project = poll_until(created, platform.project_timeout_seconds,
                             f"project {name} ({project.id}) to be created", interval=1.0)
    if project.status != "success":
        raise PlatformError(f"project {name} ({project.id}) creation ended {project.status}")
    return project


def bootstrap(platform, config, digests: list[dict], say=lambda text: None) -> str:
    """The control app's URL, once it answers for this cluster (made or mended first)."""
    project = ensure_project(platform, say)
    refuse_one_in_the_cluster_project(platform, config)
    control = control_project(platform)
    ensure_project(control, say)
    text = yaml.safe_dump(control_config(config, project.id), sort_keys=True)
    digest = hashlib.sha256((text + json.dumps(digests, sort_keys=True)).encode()).hexdigest()[:16]
    env = {"RAYDEPLOY_API_TOKEN_DIGESTS": json.dumps(digests, sort_keys=True), DIGEST_ENV: digest,
           "RAYDEPLOY_CONTROL_CONFIG": CONFIG_FILE}
    spec = AppSpec(name=app_name(config), script=SCRIPT, cpu=1, memory=2, env=env,
                   description=f"raydeploy control plane of {config.cluster_name}", public=True)
    app = next((a for a in control.list_apps() if a.name == spec.name), None)
    url = control.public_url(app or _placeholder(spec))
    env["RAYDEPLOY_PUBLIC_URL"] = url  # where the cluster's management API forwards to
    cml = control.client
    if app is None:
        control.write_file_at(CONFIG_FILE, text)
        say(f"control plane: starting application {spec.name} in project {control.project_name}")
        app = control.create_app(spec)
    elif app.spec.env.get(DIGEST_ENV) != digest:
        say(f"control plane: its config or tokens changed: restarting {spec.name}")
        control.write_file_at(CONFIG_FILE, text)
        cml.request("PATCH", control._path(f"/applications/{app.id}"), f"update {spec.name}",
                    json={"environment": environment_patch({**app.spec.env, **env})})
        cml.request("POST", control._path(f"/applications/{app.id}:restart"), f"restart {spec.name}")
    elif app.status in (FAILED, STOPPED):
        say(f"control plane: {spec.name} is {app.status}: restarting it")
        control.write_file_at(CONFIG_FILE, text)  # (it refuses a config changed in the project)
        cml.request("POST", control._path(f"/applications/{app.id}:restart"), f"restart {spec.name}")
    wait_for(control, app, url, config, say)
    return url


def refuse_one_in_the_cluster_project(platform, config) -> None:
    """A control app an earlier version made in the cluster's own project (where every node
    can write its store) is not taken over: it is named, with what to do."""
    old = next((a for a in platform.list_apps() if a.name == app_name(config)), None)
    if old is not None:
        raise Unavailable(
            f"application {old.name} in project {platform.project_name} is a control plane an "
            f"earlier version made in the cluster's own project, where the cluster's code can "
            f"write its store: export its audit trail (deploy_master.py audit export), then "
            f"delete that application; --deploy then makes the control plane in project "
            f"{platform.project_name}-control")


def existing(platform, config) -> str:
    """The URL of the control app that runs (for commands that make nothing: status, plan,
    approve, audit); a missing or ended one is said, not made."""
    control = control_project(platform)
    try:
        app = next((a for a in control.list_apps() if a.name == app_name(config)), None)
    except ProjectMissing:
        app = None
    if app is None:
        raise Unavailable(f"cluster {config.cluster_name} has no control plane on CML yet (no "
                          f"application {app_name(config)} in project {control.project_name}): "
                          f"--deploy makes it")
    if app.status in (FAILED, STOPPED):
        raise Unavailable(f"the control app {app.name} is {app.status}: --deploy restarts it")
    return control.public_url(app)


def _placeholder(spec: AppSpec):
    from cluster.platforms.records import App
    return App(id="", name=spec.name, status="", spec=spec)


def wait_for(platform, app, url: str, config, say, clock: Clock = SYSTEM_CLOCK,
             answering=None) -> None:
    """Until the app runs and its URL answers /health for this cluster; an app that ended,
    or the timeout (``cml.control_timeout_seconds``), is said with the end of its log."""
    answering = answering or answers
    started = clock.monotonic()
    status = [None]

    def ready() -> bool:
        try:
            status[0] = platform.get_app(app.id).status
        except PlatformError as e:
            status[0] = f"unknown ({e})"
        if status[0] in (FAILED, STOPPED):
            raise ControlAppFailed(_with_log(platform, f"the control app {app.name} is "
                                                       f"{status[0]}"))
        return status[0] == RUNNING and answering(url, config.cluster_name)

    def progress(_line: str) -> None:
        say(f"control plane: waiting for {app.name} ({status[0]}, "
            f"{clock.monotonic() - started:.0f}s)")
    timeout = platform.cml.control_timeout_seconds
    try:
        poll_until(ready, timeout, f"the control app {app.name}", clock=clock, interval=1.0,
                   on_wait=throttled(progress, 10.0, clock))
    except TimedOut:
        raise ControlAppFailed(_with_log(platform, f"the control app {app.name} did not "
                                                   f"answer at {url} within {timeout:.0f}s "
                                                   f"(it is {status[0]})")) from None
    waited = clock.monotonic() - started
    say(f"control plane: {url}" + (f" (ready after {waited:.0f}s)" if waited > 1 else ""))


class ControlAppFailed(Unavailable):
    """The control app ended, or its URL never answered."""


def _with_log(platform, message: str) -> str:
    tail = (platform.read_file_at(LOG_FILE) or "").strip().splitlines()[-15:]
    return message + ("; the end of its log:\n  " + "\n  ".join(tail) if tail
                      else "; it wrote no log yet")


def throttled(say, every: float, clock: Clock):
    """``say``, at most once every ``every`` seconds."""
    last = [clock.monotonic()]

    def maybe(line: str) -> None:
        if clock.monotonic() - last[0] >= every:
            last[0] = clock.monotonic()
            say(line)
    return maybe


def answers(url: str, cluster_name: str) -> bool:
    try:
        health = requests.get(f"{url}/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return health.get("cluster_name") == cluster_name and health.get("control_plane") is True

"""The node launcher: the script every node runs, on every platform.

A platform may start a script with no arguments, so everything comes from the environment,
in names of this tool's (a platform says where its own facts are, below):

    RAYDEPLOY_ROLE           head | worker | prometheus (see ``prometheus``)
    RAYDEPLOY_APP_NAME       this app's name (names the published node file)
    RAYDEPLOY_NODE_ADDRESS   this node's address (a loopback address locally), or
    RAYDEPLOY_NODE_ADDRESS_FROM  the variable holding it, where only the node's host knows
                             it (the platform sets this one: its node_environment)
    RAY_HEAD_ADDRESS         host:port of the head's GCS (workers)
    RAYDEPLOY_RAY_ARGS       JSON object of extra ``ray start`` options (ports, resources)
    RAY_AUTH_MODE / RAY_AUTH_TOKEN   token auth, passed through to every Ray process
    RAYDEPLOY_PROMETHEUS_PORT        (head) where the cluster's Prometheus listens, on this
                             address: becomes RAY_PROMETHEUS_HOST for the dashboard
    RAYDEPLOY_VENV           the project's venv to run in (CML: the one setup_environment
                             built); the launcher starts itself again in it
    RAYDEPLOY_APP_PORT (_FROM)   the port the platform publishes the app's URL at, if any
    RAYDEPLOY_PLATFORM_SECRETS   variables the platform gives the node's processes that Ray's
                             must not hold (comma separated; its ``secret_env``)
    RAYDEPLOY_PUBLISH_RAY_TOKEN   (head) leave the Ray token in the project files too
                             (``ray_token``, 0600), for the project's sessions and jobs

It publishes ``nodes/<app>.json`` (and for the head ``head_address``) in the project files,
then replaces itself with ``ray start --block`` so the app's process is the node. The
project (its working directory) is on PYTHONPATH for every Ray process, and the directory of
the interpreter that runs Ray first on PATH (a job's ``python`` is the cluster's).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

RAY_COMMAND = ("-m", "ray.scripts.scripts")  # python -m ...: the `ray` command


def project_files() -> Path:
    return Path(os.environ.get("RAYDEPLOY_PROJECT_FILES") or Path.cwd() / ".raydeploy_files")


def from_platform(environ, name: str) -> str | None:
    """``RAYDEPLOY_<name>``, or the value of the variable ``RAYDEPLOY_<name>_FROM`` names."""
    source = environ.get(f"RAYDEPLOY_{name}_FROM")
    return environ.get(f"RAYDEPLOY_{name}") or (environ.get(source) if source else None)


def node_address(environ) -> str:
    address = from_platform(environ, "NODE_ADDRESS")
    if not address:
        raise SystemExit("RAYDEPLOY_NODE_ADDRESS (or RAYDEPLOY_NODE_ADDRESS_FROM) is not set: "
                         "the platform tells a node its address")
    return address


def ray_start_argv(environ) -> list[str]:
    role = environ["RAYDEPLOY_ROLE"]
    ip = node_address(environ)
    options = json.loads(environ.get("RAYDEPLOY_RAY_ARGS") or "{}")
    argv = ["start", "--block", f"--node-ip-address={ip}", "--disable-usage-stats"]
    if role == "head":
        argv += ["--head", f"--dashboard-host={ip}"]
    elif role == "worker":
        argv.append(f"--address={environ['RAY_HEAD_ADDRESS']}")
    else:
        raise SystemExit(f"RAYDEPLOY_ROLE must be head or worker, not {role!r}")
    for key, value in sorted(options.items()):
        argv.append(f"--{key.replace('_', '-')}={value}")
    return argv


def into_venv(environ) -> None:
    """Start this script again with the project venv's Python (RAYDEPLOY_VENV), unless it
    already runs there: the nodes run what setup_environment installed, not the runtime."""
    venv = environ.get("RAYDEPLOY_VENV")
    if not venv:
        return
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"the project's venv {venv} has no bin/python: the setup_environment "
                         f"job builds it (job_creation)")
    if Path(sys.prefix).resolve() != Path(venv).resolve():
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def with_project_on_path(environ) -> None:
    """Every Ray process imports the project's modules (Serve apps' import paths), and a
    job's ``python`` (``ray job submit -- python ...``) is the interpreter that runs Ray:
    its directory (the venv's bin, not the one it links to) comes first on PATH."""
    project, current = os.getcwd(), environ.get("PYTHONPATH", "")
    if project not in current.split(os.pathsep):
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (project, current) if p)
    interpreter = str(Path(sys.executable).parent)
    rest = [p for p in environ.get("PATH", os.defpath).split(os.pathsep) if p and p != interpreter]
    environ["PATH"] = os.pathsep.join([interpreter, *rest])


# what the node's processes may be given that its Ray processes (every Serve replica, task and
# job: code that operators deploy) must not hold: any control-plane credential, and what the
# platform names (RAYDEPLOY_PLATFORM_SECRETS: e.g. the workspace's API key every app gets)
OWN_SECRETS = ("RAYDEPLOY_TOKEN", "RAYDEPLOY_API_TOKENS", "RAYDEPLOY_API_TOKEN_DIGESTS")


def not_for_ray(environ) -> tuple[str, ...]:
    named = environ.get("RAYDEPLOY_PLATFORM_SECRETS", "")
    return OWN_SECRETS + tuple(n for n in named.split(",") if n)


def without_platform_secrets(environ) -> None:
    for name in not_for_ray(environ):
        environ.pop(name, None)


def main() -> None:
    environ = os.environ
    into_venv(environ)
    with_project_on_path(environ)
    without_platform_secrets(environ)
    if environ.get("RAYDEPLOY_ROLE") == "prometheus":
        return prometheus(environ)
    ip = node_address(environ)
    options = json.loads(environ.get("RAYDEPLOY_RAY_ARGS") or "{}")
    files = project_files()
    (files / "nodes").mkdir(parents=True, exist_ok=True)
    node = {"app": environ.get("RAYDEPLOY_APP_NAME", ip), "ip": ip, "pid": os.getpid(),
            "role": environ["RAYDEPLOY_ROLE"]}
    app_port = from_platform(environ, "APP_PORT") or ""
    if app_port.isdigit():
        node["app_port"] = int(app_port)
    _publish(files / "nodes" / f"{node['app']}.json", json.dumps(node))
    if node["role"] == "head":
        _publish(files / "head_address", f"{ip}:{options.get('port', 6379)}")
        if environ.get("RAYDEPLOY_PUBLISH_RAY_TOKEN") and environ.get("RAY_AUTH_TOKEN"):
            _publish(files / "ray_token", environ["RAY_AUTH_TOKEN"], private=True)
    if importlib.util.find_spec("ray") is None:
        raise SystemExit(f"Ray is not installed for {sys.executable}")
    argv = ray_start_argv(environ)
    if node["role"] == "head" and environ.get("RAYDEPLOY_PROMETHEUS_PORT"):
        # the dashboard's metrics pages ask this cluster's Prometheus (it listens beside the head)
        os.environ["RAY_PROMETHEUS_HOST"] = f"http://{ip}:{environ['RAYDEPLOY_PROMETHEUS_PORT']}"
    print("launcher: ray " + " ".join(argv), flush=True)
    # the `ray` command of this Python (its entry point), whether or not a bin/ray sits
    # beside it: a venv made on top of a runtime's packages has none of its own
    os.execv(sys.executable, [sys.executable, *RAY_COMMAND, *argv])


def prometheus(environ) -> None:
    """The cluster's Prometheus (RAYDEPLOY_PROMETHEUS_ARGS: its config file and data dir
    under the project files, the address to listen on, the retention)."""
    sys.path.insert(0, os.getcwd())  # the project's (run as a script, only cluster/ is there)
    from cluster.prometheus import prometheus_binary, prometheus_command
    options = json.loads(environ["RAYDEPLOY_PROMETHEUS_ARGS"])
    binary = prometheus_binary()
    if binary is None:
        raise SystemExit("prometheus is not installed (Debian: apt-get install "
                         "--no-install-recommends prometheus)")
    files = project_files()
    (files / options["data"]).mkdir(parents=True, exist_ok=True)
    argv = prometheus_command(binary, files / options["config"], files / options["data"],
                              options["listen"], options["retention"])
    print("launcher: " + " ".join(argv), flush=True)
    os.execv(binary, argv)


def _publish(path: Path, text: str, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()

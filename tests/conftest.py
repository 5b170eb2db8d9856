"""Shared test helpers: run the CLI as a user would, write configs, clean up every process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.platforms.local import stop_recorded_apps  # noqa: E402,F401 (tests import it from here)

pytest_plugins = ["tests.live_cluster", "tests.lab_fixtures",  # the shared cluster, labs,
                  "tests.control_plane_fixtures"]  # a control plane


TIMINGS: list[str] = []  # lines for the end of the run (e.g. how long the crash matrix took)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


# what starts another process: a test that reaches one of these (itself, or through a
# function of its module) is an integration test, whatever its module says
STARTS_PROCESSES = frozenset({"cli", "spawn_cli", "subprocess", "pexpect", "Popen", "popen"})


def starts_processes(function, module_globals: dict, depth: int = 3) -> bool:
    code = getattr(function, "__code__", None)
    if code is None or depth == 0:
        return False
    names = set(code.co_names) | {n for c in code.co_consts if hasattr(c, "co_names")
                                  for n in c.co_names}
    if names & STARTS_PROCESSES:
        return True
    return any(starts_processes(module_globals[n], module_globals, depth - 1) for n in names
               if callable(module_globals.get(n)) and getattr(module_globals[n], "__module__",
                                                              None) == module_globals["__name__"])


def pytest_collection_modifyitems(items):
    """A test is ``unit`` unless its module marks it ``integration`` or it starts another
    process (the CLI, a server, a subprocess): ``make test-fast`` runs in-process tests only."""
    for item in items:
        if item.get_closest_marker("integration") is None:
            function = getattr(item, "function", None)
            if function is not None and starts_processes(function, function.__globals__):
                item.add_marker(pytest.mark.integration)
            else:
                item.add_marker(pytest.mark.unit)


def os_user() -> str:
    """The OS account running the tests (what the CLI records as who acts)."""
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def base_config(state_dir: Path, name: str = "rdtest", workers: int = 2, **extra) -> dict:
    config = {
        "cluster_name": name,
        "platform": "local",
        "state_dir": str(state_dir),
        "project_dir": str(ROOT),
        "jobs_config": str(ROOT / "jobs_config.yaml"),
        "ray": {"auth": "token"},
        "head": {"cpu": 1, "memory": 1},
        "workers": {"count": workers, "cpu": 1, "memory": 1},
        "serve": {"applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                                    "route_prefix": "/hello"}]},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_NUM_WORKERS", "RAY_WORKER_GPUS", "FORCE_REBUILD", "CML_HOST",
                        "CML_API_KEY", "RUNTIME_IDENTIFIER", "RAY_ADDRESS", "CML_PROJECT_ID",
                        "CDSW_PROJECT_ID")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def cli(*args, config: Path | None = None, env: dict | None = None, timeout: float = 300,
        stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "deploy_master.py")]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command + list(args), cwd=ROOT, env=env or clean_env(), stdin=stdin,
                          capture_output=True, text=True, timeout=timeout)


def spawn_cli(*args, config: Path, env: dict | None = None, text: bool = True) -> subprocess.Popen:
    """deploy_master.py in the background, without a terminal, output on its stdout pipe."""
    return subprocess.Popen([sys.executable, str(ROOT / "deploy_master.py"), "--config", str(config),
                             *args], cwd=ROOT, env=env or clean_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=text,
                            start_new_session=True)


def our_processes(state_dir: Path) -> list[tuple[int, str]]:
    """(pid, command line) of live processes of the cluster of ``state_dir``: its private Ray
    temp dir is in their command line or environment."""
    import zlib
    marker = f"/tmp/rd-{zlib.crc32(str(state_dir).encode()):08x}-".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append((int(pid), cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]))
    return found


def our_ray_processes(state_dir: Path) -> list[str]:
    """Command lines of live processes that belong to the cluster of ``state_dir``."""
    return [cmdline for _, cmdline in our_processes(state_dir)]


def wait_until(check, timeout: float = 20.0, what: str = "", interval: float = 0.05):
    """Call ``check`` until it returns something truthy (returned); fail the test at timeout."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(interval)


@pytest.fixture
def state_dir(tmp_path) -> Path:
    path = tmp_path / "state"
    yield path
    stop_recorded_apps(path)


class ApiServer:
    """``python -m api_server`` on a free loopback port, stopped (by pid) when done."""

    def __init__(self, config: Path, env: dict | None = None, host: str = "127.0.0.1",
                 *flags: str, port: int | None = None):
        import socket
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart: TIME_WAIT left
            s.bind((host, port or 0))
            self.port = s.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.log = open(config.parent / f"api-{self.port}.log", "w+")  # noqa: SIM115 - lives with the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api_server", "--config", str(config), "--host", host,
             "--port", str(self.port), *flags], cwd=ROOT, env=env or clean_env(),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        import time

        import requests
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("API server did not start:\n" + self.output())
            time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        from cluster import processes
        if self.proc.poll() is None:
            processes.stop_session(self.proc.pid, grace_seconds=3)
        self.proc.wait()
        self.log.close()

"""Commands and long-lived processes on a host reached over SSH: the ssh platform's command
runner (the seam's "run a command or a long-lived process on a node").

The OpenSSH client, not a Python SSH library: it is what operators already configure and
trust (``~/.ssh/config``, agents, ProxyJump), it checks host keys the way they expect, and
its connection sharing (``ControlMaster``, as Ray's own command runner uses) makes every
command after the first a round trip on an open connection, in this process and in the
next ones for PERSIST seconds (the next CLI command reuses it). Host keys are checked strictly
against the ``known_hosts`` file the config names: an unknown or changed key stops the
command, naming the host (never ``StrictHostKeyChecking=no``).

What runs on the host is Python (the nodes need it anyway): a small script sent on stdin
(``REMOTE``) starts a process in a session of its own, detached from the SSH session, and
answers with its pid and kernel start time; a process is stopped only through that record
(the pid still being the process it started), never by name.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import Unavailable

# the helper run on the host, by ``python3 -`` (sent on stdin: nothing is installed there)
REMOTE = Path(__file__).with_name("remote_helper.py").read_text()


# the helper runs with the host's python3; its absence is said apart from a failure in it
NO_PYTHON = 127
WITH_PYTHON = f'python3 -c "" >/dev/null 2>&1 || exit {NO_PYTHON}; exec python3 -'


def helper_input(request: dict) -> str:
    """The helper's program with its request in it: what a request holds (a node's
    environment, with the cluster's Ray token) goes through the SSH channel, never on a
    command line (this machine's or the host's, where any user of it reads /proc/*/cmdline)."""
    return f"REQUEST = {json.dumps(request)!r}\n{REMOTE}"


PERSIST = 60  # seconds a shared connection outlives its last use (the next command reuses it)


def sockets_dir(*identity: str | None) -> str:
    """Where the shared connections' sockets are: a directory of this user's (0700, short:
    a socket path has ~100 characters), one per known_hosts + key + ssh config, so a later
    process with the same ones reuses the connections and one with others never does. A
    directory someone else made or can write is not used (a private one is made instead)."""
    digest = hashlib.sha256("\0".join(i or "" for i in identity).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"rd-ssh-{os.getuid()}-{digest}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix="rd-ssh-")
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        return str(path)
    return tempfile.mkdtemp(prefix="rd-ssh-")


class SSHError(Unavailable):
    """A host could not be reached or did not do what was asked; the message names it."""


class HostKeyMismatch(SSHError):
    """The host's key is not the one ``known_hosts`` holds for it (changed, or unknown)."""


@dataclass(frozen=True)
class Host:
    name: str  # how people call it (the inventory's name)
    address: str
    user: str = "root"
    port: int = 22
    identity_file: str | None = None  # None: the runner's


@dataclass(frozen=True)
class Process:
    """A long-lived process on a host, as recorded when it was started (or seen): found and
    stopped only by this."""
    host: str
    pid: int
    start: str  # the kernel's start time of ``pid`` (clock ticks since boot)
    command: str = ""
    session: int | None = None  # its session id, where seen (a node's: the node's pid)


class SSHRunner:
    """Runs commands on hosts with the OpenSSH client, one shared connection per host."""

    def __init__(self, known_hosts: Path | str, identity_file: Path | str | None = None,
                 connect_timeout: float = 10.0, config_file: Path | str | None = None):
        self.known_hosts = str(known_hosts)
        self.identity_file = str(identity_file) if identity_file else None
        self.connect_timeout = connect_timeout
        self.config_file = str(config_file) if config_file else None
        self._sockets = sockets_dir(self.known_hosts, self.identity_file, self.config_file)
        self._connected: set[str] = set()
        self._locks: dict[str, threading.Lock] = {}  # one master per host, whatever the threads
        self._lock = threading.Lock()

    def _argv(self, host: Host, *extra: str) -> list[str]:
        options = {"BatchMode": "yes", "StrictHostKeyChecking": "yes",
                   "UserKnownHostsFile": self.known_hosts, "GlobalKnownHostsFile": "/dev/null",
                   "ConnectTimeout": str(int(self.connect_timeout)),
                   "ControlPath": f"{self._sockets}/%C", "ServerAliveInterval": "15",
                   "LogLevel": "ERROR"}
        if host.identity_file or self.identity_file:
            options.update(IdentityFile=host.identity_file or self.identity_file,
                           IdentitiesOnly="yes")
        argv = ["ssh", "-F", self.config_file or "none", "-p", str(host.port)]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        return argv + list(extra) + [f"{host.user}@{host.address}"]

    def connect(self, host: Host) -> None:
        """Open the host's shared connection, or find the one an earlier process opened (a
        master lives in the background for PERSIST seconds after its last use), or say why
        it cannot be opened."""
        with self._lock:
            lock = self._locks.setdefault(host.name, threading.Lock())
        with lock:
            if host.name not in self._connected:
                self._connect(host)

    def _connect(self, host: Host) -> None:
        # a master of an earlier command (the same user, host, known_hosts and key) serves
        alive = subprocess.run(self._argv(host, "-O", "check"), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
        if alive.returncode == 0:
            self._connected.add(host.name)
            return
        # its output goes to a file, never to a pipe of ours: a backgrounded master would
        # hold the pipe open for its lifetime
        with tempfile.TemporaryFile("w+") as errors:
            done = subprocess.run(self._argv(host, "-M", "-N", "-f", "-o", "ControlMaster=yes",
                                             "-o", f"ControlPersist={PERSIST}"),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=errors, timeout=self.connect_timeout + 30)
            errors.seek(0)
            if done.returncode != 0:
                raise self._failure(host, errors.read())
        self._connected.add(host.name)

    def run(self, host: Host, command: list[str], timeout: float = 120,
            input: str | bytes | None = None) -> subprocess.CompletedProcess:
        """``command`` on ``host`` (quoted for its shell); its exit status is the answer's.
        SSHError when the host cannot be reached or its key is not the known one. ``input``
        as bytes: its output is bytes too."""
        self.connect(host)
        try:
            done = subprocess.run(self._argv(host, "-o", "ControlMaster=no") + ["--", shlex.join(command)],
                                  input=input, capture_output=True,
                                  text=not isinstance(input, bytes), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SSHError(f"{host.name} ({host.address}): {shlex.join(command)[:60]} did not "
                           f"finish within {timeout:.0f}s") from None
        if done.returncode == 255:  # ssh's own failure, not the command's
            stderr = done.stderr
            raise self._failure(host, stderr if isinstance(stderr, str) else stderr.decode(
                errors="replace"))
        return done

    def _failure(self, host: Host, stderr: str) -> SSHError:
        where = f"{host.name} ({host.user}@{host.address}:{host.port})"
        text = stderr.strip()
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
            return HostKeyMismatch(
                f"{where}: its host key is not the one {self.known_hosts} holds for it (changed, "
                f"or not there): nothing was run; if the host was rebuilt, check the new key "
                f"out of band and replace its line")
        if "Permission denied" in text:
            return SSHError(f"{where}: the key was refused (Permission denied): check the "
                            f"identity file and the host's authorized_keys")
        last = text.splitlines()[-1] if text else "no answer"
        return SSHError(f"{where} cannot be reached: {last}")

    def python(self, host: Host, request: dict, timeout: float = 60) -> dict:
        """The REMOTE helper on ``host`` (python3 there), its JSON answer."""
        done = self.run(host, ["sh", "-c", WITH_PYTHON], timeout=timeout,
                        input=helper_input(request))
        if done.returncode == NO_PYTHON:
            raise SSHError(f"{host.name} ({host.address}) has no python3 that runs: install "
                           f"Python there (the nodes run on it)")
        if done.returncode != 0:
            raise SSHError(f"{host.name} ({host.address}): {request['do']} failed: "
                           f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, host: Host, argv: list[str], log: str, env: dict | None = None,
              cwd: str | None = None) -> Process:
        """Start ``argv`` on ``host`` in a session of its own (it outlives this SSH session),
        its output appended to ``log`` there; the record that finds and stops it."""
        answer = self.python(host, {"do": "start", "argv": argv, "log": log, "env": env or {},
                                    "cwd": cwd})
        return Process(host.name, int(answer["pid"]), answer["start"])

    def execute(self, host: Host, argv: list[str], env: dict | None = None,
                cwd: str | None = None, timeout: float = 60, python: tuple = (),
                *, keep: int) -> dict:
        """Run ``argv`` on ``host`` and wait for it (``env`` through the helper: never on a
        command line; ``python`` as ``argv[0]``: the first of ``python`` there): ``code``
        (None: killed at ``timeout``) and the last ``keep`` characters of its ``output``."""
        return self.python(host, {"do": "run", "argv": argv, "env": env or {}, "cwd": cwd,
                                  "timeout": timeout, "python": list(python), "keep": keep},
                           timeout=timeout + 30)

    def alive(self, host: Host, process: Process) -> bool:
        """Whether the session it started still runs (the pid not reused by another)."""
        return self.alive_all(host, [process])[0]

    def alive_all(self, host: Host, started: list[Process]) -> list[bool]:
        """``alive`` of each, in one round trip."""
        return self.python(host, {"do": "alive", "records": [_record(p) for p in started]})["alive"]

    def find(self, host: Host, key: str, value: str) -> Process | None:
        """The session leader on ``host`` whose environment has ``key=value``: a process
        started with it whose record was lost (its starter died first)."""
        found = self.python(host, {"do": "find", "key": key, "value": value})["found"]
        return Process(host.name, found["pid"], found["start"]) if found else None

    def results(self, host: Host, runs: list[tuple[str, Process]]) -> list[dict]:
        """How each (run directory, process) of cluster/job_runner.py ended: ``result``
        ("succeeded 0", "failed 1", ...), or None with ``alive``: whether it still runs."""
        return self.python(host, {"do": "results", "runs": [
            {"dir": d, "record": _record(p)} for d, p in runs]})["runs"]

    def files(self, host: Host, directory: str, suffix: str) -> dict[str, str]:
        """{name: text} of the files in ``directory`` on ``host`` whose name ends ``suffix``."""
        return self.python(host, {"do": "files", "dir": directory, "suffix": suffix})["files"]

    def put(self, host: Host, archive: bytes, directory: str, timeout: float = 300) -> None:
        """Unpack a gzipped tar ``archive`` into ``directory`` on ``host`` (made first)."""
        done = self.run(host, ["sh", "-c", 'mkdir -p "$1" && tar -xzf - -C "$1"', "sh",
                               directory], input=archive, timeout=timeout)
        if done.returncode != 0:
            raise SSHError(f"{host.name} ({host.address}): could not unpack into {directory}: "
                           f"{done.stderr.decode(errors='replace').strip()[-200:]}")

    def stop(self, host: Host, process: Process, grace_seconds: float = 5) -> bool:
        """Stop its session (TERM, then KILL after ``grace_seconds``), only if the pid is
        still the process it started; False when it was not running."""
        answer = self.python(host, {"do": "stop", "record": _record(process),
                                    "grace": grace_seconds}, timeout=grace_seconds + 60)
        return answer["stopped"]

    def stop_each(self, host: Host, found: list[Process], grace_seconds: float = 5) -> list[int]:
        """Stop exactly ``found`` (TERM, then KILL after ``grace_seconds``), each only while
        its pid is still the process seen; the pids it stopped."""
        return self.python(host, {"do": "stop_each", "records": [_record(p) for p in found],
                                  "grace": grace_seconds}, timeout=grace_seconds + 60)["stopped"]

    def survey(self, host: Host, ports: list[int] = (), started: list[Process] = ()) -> dict:
        """What is on ``host`` already: Ray's processes, whoever started them (``ray``: pid,
        start, command), which of ``ports`` something listens on (``taken``), and
        ``alive_all`` of ``started`` (``alive``), in one round trip."""
        answer = self.python(host, {"do": "survey", "ports": list(ports),
                                    "records": [_record(p) for p in started]})
        return {"ray": [Process(host.name, r["pid"], r["start"], r["command"], r["sid"])
                        for r in answer["ray"]], "taken": answer["taken"],
                "alive": answer["alive"]}

    def close(self) -> None:
        """End the shared connections (``ssh -O exit``), and remove their sockets."""
        for socket in Path(self._sockets).glob("*"):
            subprocess.run(["ssh", "-F", "none", "-o", f"ControlPath={socket}", "-O", "exit", "x"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        self._connected.clear()
        try:
            Path(self._sockets).rmdir()
        except OSError:
            pass


def _record(process: Process) -> dict:
    return {"pid": process.pid, "start": process.start}

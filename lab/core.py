"""The lab: namespaces, bridges, hosts and their processes (see lab/__init__.py)."""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster import processes
from lab.machine import LAB_ROOT, PREFIX, available

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = Path(__file__).with_name("anchor.py")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
LAB_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544: for testing, inside the lab only
PRIVATE_POINTS = ("/tmp", "/home", "/dev/shm")
READY_SECONDS = 10.0


class LabError(RuntimeError):
    """A lab operation failed (the message says which command and why)."""


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    addresses: dict  # network name -> address
    anchor: int  # pid of the process holding its mount namespace
    anchor_start: str
    dirs: dict = field(default_factory=dict)  # path in the host -> path outside

    @property
    def address(self) -> str:
        """Its first address (most hosts have one)."""
        return next(iter(self.addresses.values()))


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class Lab:
    """A lab, as recorded in ``<dir>/lab.json`` (every process that uses it reads the same
    record under a file lock, so the CML simulator can add pods while a test adds hosts)."""

    def __init__(self, lab_dir: Path | str):
        self.dir = Path(lab_dir)
        self.file = self.dir / "lab.json"
        if not self.file.exists():
            raise LabError(f"no lab at {self.dir}")
        self.id = self._read()["id"]
        self._thread_lock = threading.Lock()

    # -- creating and opening ------------------------------------------------------------------
    @classmethod
    def create(cls, owner_pid: int | None = None, root: Path | str | None = None) -> Lab:
        """A new, empty lab (its switch namespace and root anchor). ``owner_pid``: the
        process whose death makes the lab stale (a test run); None: it stays until ``down``."""
        reason = available()
        if reason:
            raise LabError(reason)
        lab_id = secrets.token_hex(3)
        lab_dir = Path(root or LAB_ROOT) / f"{PREFIX}{lab_id}"
        lab_dir.mkdir(mode=0o700)
        root_anchor = subprocess.Popen(["sleep", "infinity"], start_new_session=True,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        state = {"id": lab_id, "created_at": time.time(),
                 "owner": _identity(owner_pid) if owner_pid else None,
                 "root_anchor": _identity(root_anchor.pid), "switch": f"{PREFIX}{lab_id}-sw",
                 "networks": {}, "hosts": {}, "processes": []}
        (lab_dir / "lab.json").write_text(json.dumps(state, indent=1))
        lab = cls(lab_dir)
        try:
            lab._ip("netns", "add", state["switch"])
            lab._ip("-n", state["switch"], "link", "set", "lo", "up")
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def open(cls, lab_id: str, root: Path | str | None = None) -> Lab:
        lab_id = lab_id.removeprefix(PREFIX)
        return cls(Path(root or LAB_ROOT) / f"{PREFIX}{lab_id}")

    # -- the record ------------------------------------------------------------------------------
    def _read(self) -> dict:
        return json.loads(self.file.read_text())

    @contextlib.contextmanager
    def _edit(self):
        """The record, read and written back under an exclusive lock (threads and processes)."""
        with self._thread_lock, open(self.dir / "lab.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            yield state
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1))
            os.replace(tmp, self.file)

    @property
    def state(self) -> dict:
        return self._read()

    def hosts(self) -> dict[str, Host]:
        return {name: Host(**h) for name, h in self._read()["hosts"].items()}

    def host(self, name: str) -> Host:
        try:
            return self.hosts()[name]
        except KeyError:
            raise LabError(f"lab {self.id} has no host {name!r}") from None

    # -- commands in the root namespaces ---------------------------------------------------------
    def _root_prefix(self) -> list[str]:
        """``nsenter`` into the namespaces the lab was made from, when this process is not
        in them (lab operations run from inside a lab host too)."""
        anchor = self._read()["root_anchor"]["pid"]
        mine = [_ns_inode(f"/proc/self/ns/{k}") for k in ("net", "mnt")]
        theirs = [_ns_inode(f"/proc/{anchor}/ns/{k}") for k in ("net", "mnt")]
        return [] if mine == theirs else ["nsenter", "-t", str(anchor), "-n", "-m", "--"]

    def _ip(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(self._root_prefix() + ["ip", *args], capture_output=True,
                                text=True, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    # -- networks and hosts ----------------------------------------------------------------------
    def add_network(self, name: str, cidr: str) -> None:
        """A bridge ``br-<name>`` in the switch namespace for the subnet ``cidr``."""
        net = ipaddress.ip_network(cidr)
        if not NAME.match(name) or len(name) > 8:
            raise LabError(f"network name {name!r}: lowercase letters, digits, '-', up to 8")
        if not net.subnet_of(LAB_NET):
            raise LabError(f"{cidr} is not inside {LAB_NET}: lab addresses stay in the lab's range")
        with self._edit() as state:
            if name in state["networks"]:
                raise LabError(f"lab {self.id} has a network {name!r} already")
            state["networks"][name] = {"cidr": str(net)}
        self._hosts_file(name).write_text("127.0.0.1 localhost\n")
        switch = self._read()["switch"]
        self._ip("-n", switch, "link", "add", f"br-{name}", "type", "bridge")
        self._ip("-n", switch, "link", "set", f"br-{name}", "up")

    def add_host(self, name: str, networks: list[str] | tuple = ("ws",), *,
                 dirs: dict[str, str] | None = None, addresses: dict[str, str] | None = None,
                 keep: tuple[str, ...] = ()) -> Host:
        """A host on ``networks`` (one interface each: eth0, eth1, ...), seeing ``dirs``
        (path in the host -> directory outside) beside the shared image. ``addresses``:
        network -> address, else the lowest free one."""
        if not NAME.match(name):
            raise LabError(f"host name {name!r}: lowercase letters, digits and '-' only")
        if not networks:
            raise LabError(f"host {name}: give it at least one network")
        dirs = {str(k): str(v) for k, v in (dirs or {}).items()}
        with self._edit() as state:
            if name in state["hosts"]:
                raise LabError(f"lab {self.id} has a host {name!r} already")
            chosen = {}
            for net in networks:
                if net not in state["networks"]:
                    raise LabError(f"lab {self.id} has no network {net!r}")
                chosen[net] = (addresses or {}).get(net) or self._free_address(state, net)
            netns = f"{PREFIX}{self.id}-{name}"
            # reserved while it is being made (the anchor is filled in below)
            state["hosts"][name] = {"name": name, "netns": netns, "addresses": chosen,
                                    "anchor": 0, "anchor_start": "", "dirs": dirs}
        try:
            self._make_host(name, netns, chosen, dirs, keep)
        except BaseException:
            self.remove_host(name)
            raise
        return self.host(name)

    @staticmethod
    def _free_address(state: dict, net: str) -> str:
        taken = {h["addresses"].get(net) for h in state["hosts"].values()}
        for address in ipaddress.ip_network(state["networks"][net]["cidr"]).hosts():
            if str(address) not in taken:
                return str(address)
        raise LabError(f"network {net} is full")

    def _make_host(self, name: str, netns: str, addresses: dict, dirs: dict,
                   keep: tuple[str, ...]) -> None:
        state = self._read()
        switch = state["switch"]
        self._ip("netns", "add", netns)
        self._ip("-n", netns, "link", "set", "lo", "up")
        for index, (net, address) in enumerate(addresses.items()):
            # made in the switch namespace, its peer straight into the host: never in the root
            port, cidr = f"{net}-{name}"[:15], state["networks"][net]["cidr"]
            prefix = ipaddress.ip_network(cidr).prefixlen
            self._ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name",
                     f"eth{index}", "netns", netns)
            self._ip("-n", switch, "link", "set", port, "master", f"br-{net}")
            self._ip("-n", switch, "link", "set", port, "up")
            self._ip("-n", netns, "addr", "add", f"{address}/{prefix}", "dev", f"eth{index}")
            self._ip("-n", netns, "link", "set", f"eth{index}", "up")
        anchor = self._start_anchor(name, netns, addresses, dirs, keep)
        with self._edit() as state:
            state["hosts"][name].update(anchor=anchor, anchor_start=processes.start_time(anchor))

    def _start_anchor(self, name: str, netns: str, addresses: dict, dirs: dict,
                      keep: tuple[str, ...]) -> int:
        points = list(PRIVATE_POINTS)
        home = os.path.expanduser("~")
        if home not in points and home != "/":
            points.append(home)
        visible = {str(ROOT), sys.prefix, sys.base_prefix,
                   str(Path(os.path.realpath(sys.executable)).parent), *keep}
        binds = [[p, p] for p in sorted(visible)
                 if any(Path(p).is_relative_to(point) for point in points) and os.path.exists(p)]
        binds += [[target, source] for target, source in sorted(dirs.items())]
        # names as its first network sees them (see set_name)
        binds.append(["/etc/hosts", str(self._hosts_file(next(iter(addresses), "")))])
        spec = json.dumps({"tmpfs": points, "binds": binds})
        with open(self.dir / f"anchor-{name}.log", "ab") as log:
            proc = subprocess.Popen(self._root_prefix() + ["ip", "netns", "exec", netns,
                                                            sys.executable, str(ANCHOR), spec],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                    start_new_session=True, text=True)
        ready = _read_line(proc, READY_SECONDS)
        if ready != "ready":
            processes.stop_session(proc.pid, grace_seconds=1)
            log = (self.dir / f"anchor-{name}.log").read_text(errors="replace").strip()
            raise LabError(f"host {name}: its mounts could not be made: {log[-500:] or 'no answer'}")
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it ends
        return proc.pid

    def remove_host(self, name: str) -> None:
        """Stop everything in the host, then delete it (a pod that ended, say)."""
        host = self._read()["hosts"].get(name)
        if host is None:
            return
        self._stop_processes(lambda p: p["host"] == name)
        self._kill_netns(host["netns"])
        self._ip("netns", "del", host["netns"], check=False)
        with self._edit() as state:
            state["hosts"].pop(name, None)

    # -- names -------------------------------------------------------------------------------------
    def _hosts_file(self, network: str) -> Path:
        return self.dir / f"hosts.{network}"

    def set_name(self, hostname: str, host: str) -> None:
        """``hostname`` resolves to ``host`` in every host: to its address on each network,
        for the hosts of that network (each host's /etc/hosts is its first network's names,
        rewritten in place so the binds see the change)."""
        addresses = self.host(host).addresses
        with self._edit():
            for network, address in addresses.items():
                path = self._hosts_file(network)
                lines = [line for line in path.read_text().splitlines()
                         if line.split()[1:2] != [hostname]]
                lines.append(f"{address} {hostname}")
                with open(path, "r+") as f:
                    f.write("\n".join(lines) + "\n")
                    f.truncate()

    # -- processes -----------------------------------------------------------------------------------
    def _enter(self, host: str, cwd: str | None) -> list[str]:
        # nsenter's own --wd is resolved before it enters the mount namespace: env --chdir
        # changes directory inside it
        anchor = self.host(host).anchor
        return ["nsenter", "-t", str(anchor), "-n", "-m", "--", "env", f"--chdir={cwd or '/'}"]

    def spawn(self, host: str, argv: list[str], *, env: dict | None = None,
              cwd: str | None = None, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
              note: str = "") -> subprocess.Popen:
        """Start ``argv`` in ``host``, in a session of its own, and record it."""
        proc = subprocess.Popen(self._enter(host, cwd) + list(argv), env=env,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True)
        try:
            with self._edit() as state:
                state["processes"] = [p for p in state["processes"] if _alive(p)]
                state["processes"].append({**_identity(proc.pid), "host": host,
                                           "argv": " ".join(argv)[:200], "note": note})
        except BaseException:  # not recorded: nothing would find it again
            processes.stop_session(proc.pid, grace_seconds=1)
            raise
        return proc

    def run(self, host: str, argv: list[str], *, env: dict | None = None,
            cwd: str | None = None, timeout: float = 60, input: str | None = None
            ) -> subprocess.CompletedProcess:
        """A short command in ``host``; its session is stopped if it outlives ``timeout``."""
        proc = self.spawn(host, argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            processes.stop_session(proc.pid, grace_seconds=1)
            out, err = proc.communicate()
            raise LabError(f"{' '.join(argv)[:80]} in {host}: still running after "
                           f"{timeout:.0f}s (stopped)") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))

    def processes(self, host: str | None = None) -> list[dict]:
        """The recorded processes still alive (``host``: of that host only)."""
        return [p for p in self._read()["processes"]
                if _alive(p) and (host is None or p["host"] == host)]

    def _stop_processes(self, which) -> None:
        doomed = [p for p in self._read()["processes"] if which(p) and _alive(p)]
        threads = [threading.Thread(target=processes.stop_session, args=(p["pid"], 2))
                   for p in doomed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _kill_netns(self, netns: str) -> None:
        """Whatever still runs in one of the lab's namespaces (ours by construction: the lab
        made the namespace), the host's anchor among them."""
        for _ in range(50):
            pids = [int(p) for p in self._ip("netns", "pids", netns, check=False).split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    # -- status and removal ------------------------------------------------------------------------
    def status(self) -> dict:
        state = self._read()
        return {"id": self.id, "dir": str(self.dir), "owner": state["owner"],
                "networks": state["networks"],
                "hosts": {n: {"netns": h["netns"], "addresses": h["addresses"], "dirs": h["dirs"],
                              "processes": len(self.processes(n))}
                          for n, h in state["hosts"].items()}}

    def namespace_inodes(self) -> set[int]:
        """The inodes of the lab's network namespaces (to check that none outlives it)."""
        state = self._read()
        names = [state["switch"], *(h["netns"] for h in state["hosts"].values())]
        return {i for i in (_ns_inode(f"/var/run/netns/{n}") for n in names) if i}

    def down(self) -> None:
        """Stop every recorded process, then anything left in the lab's namespaces, then
        delete the namespaces and the lab's directory. Safe to call twice."""
        if not self.file.exists():
            return
        state = self._read()
        self._stop_processes(lambda p: True)
        for host in state["hosts"].values():
            self._kill_netns(host["netns"])
        for host in state["hosts"].values():
            self._ip("netns", "del", host["netns"], check=False)
        self._kill_netns(state["switch"])
        self._ip("netns", "del", state["switch"], check=False)
        root = state["root_anchor"]
        if _alive(root):
            processes.stop_session(root["pid"], grace_seconds=0.5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _identity(pid: int) -> dict:
    return {"pid": pid, "start": processes.start_time(pid)}


def _alive(record: dict | None) -> bool:
    """The recorded process is still the one we started (pids are reused)."""
    return bool(record) and processes.is_ours(record["pid"], record["start"])


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first line ``proc`` writes, or "" after ``timeout``."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0].strip() if line else ""

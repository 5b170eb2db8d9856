"""One writer per store, across hosts: the control plane owns its store.

On CML the control plane's store lives on the project's filesystem, which every pod of the
project mounts (a network filesystem): SQLite's WAL must not be used there (it needs shared
memory on one host), and its file locks cannot be trusted across hosts. So a control plane
takes the store with an owner record, ``<state dir>/owner.json``, made with O_EXCL (atomic
on network filesystems too) and renewed every few seconds. A second process that wants the
store is refused with who owns it; a record nobody renewed for ``STALE_SECONDS`` (its
process died with its pod, say) is taken over. Within the owning process SQLite coordinates
its own connections, so no lock of the network filesystem is relied upon.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from core.timing import SYSTEM_CLOCK, Clock
from store.db import StoreUnavailable
from store.leases import pid_alive

STALE_SECONDS = 30.0
RENEW_SECONDS = 5.0
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs",
                       "lustre", "gpfs", "afs", "ncpfs", "beegfs", "fuse.sshfs", "fuse.glusterfs",
                       "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs")


class StoreOwned(StoreUnavailable):
    """Another process owns this store (one writer per store): not for this one to use."""


def filesystem_type(path: Path | str) -> str:
    """The type of the filesystem ``path`` is on (from /proc/self/mountinfo), "" if unknown."""
    target = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                point = left.split()[4].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, right.split()[0]
    except OSError:
        return ""
    return kind


def on_network_filesystem(path: Path | str) -> bool:
    return filesystem_type(path) in NETWORK_FILESYSTEMS


class Ownership:
    """This process's claim on a store; ``lost`` once someone else took it over."""

    def __init__(self, state_dir: Path, clock: Clock = SYSTEM_CLOCK):
        self.path = Path(state_dir) / "owner.json"
        self.clock = clock
        self.me = {"host": socket.gethostname(), "pid": os.getpid(),
                   "token": os.urandom(8).hex()}
        self.lost = False
        self._stop = threading.Event()

    def _record(self) -> dict:
        return {**self.me, "renewed_at": self.clock.time()}

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _stale(self, record: dict) -> bool:
        if self.clock.time() - float(record.get("renewed_at") or 0) > STALE_SECONDS:
            return True
        return record.get("host") == socket.gethostname() and not pid_alive(record.get("pid"))

    def refuse_if_owned(self) -> None:
        """For a process that would use the store beside its owner (the CLI in embedded mode
        on a control plane's state dir): StoreOwned at once, not a lock timeout later."""
        current = self._read()
        if current is not None and not self._stale(current):
            raise StoreOwned(f"the store in {self.path.parent} is the control plane's (pid "
                             f"{current.get('pid')} on {current.get('host')}): act through it "
                             f"(deploy_master.py --server URL ...)")

    def acquire(self) -> None:
        """Take the store, or raise StoreOwned naming its owner."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            current = self._read()
            if current is not None and not self._stale(current):
                age = self.clock.time() - float(current.get("renewed_at") or 0)
                raise StoreOwned(
                    f"the store in {self.path.parent} is owned by another control plane (pid "
                    f"{current.get('pid')} on {current.get('host')}, renewed {age:.0f}s ago): "
                    f"one process writes a store; stop that one first, or wait "
                    f"{STALE_SECONDS:.0f}s after it died") from None
            self._write()  # a dead owner's record: taken over
            self.clock.sleep(0.2)  # two takers at once: the last write wins, the other backs off
            if (self._read() or {}).get("token") != self.me["token"]:
                raise StoreOwned(f"the store in {self.path.parent} was taken over by another "
                                 f"control plane at the same moment") from None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self._record()))
        threading.Thread(target=self._renew, daemon=True, name="store-owner").start()

    def _write(self) -> None:
        tmp = self.path.with_name(f"owner.{self.me['token']}.tmp")
        tmp.write_text(json.dumps(self._record()))
        os.replace(tmp, self.path)

    def renew(self) -> bool:
        """Renew the claim; False (and ``lost`` from then on: this process must not write
        any more) when another process took the store over."""
        if (self._read() or {}).get("token") != self.me["token"]:
            self.lost = True
            return False
        self._write()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS) and self.renew():
            pass

    def check(self) -> None:
        if self.lost:
            raise StoreOwned(f"another control plane took the store in {self.path.parent} "
                             f"over: this one stops writing")

    def release(self) -> None:
        self._stop.set()
        if (self._read() or {}).get("token") == self.me["token"]:
            self.path.unlink(missing_ok=True)

"""SSH hosts in a lab: each runs its own sshd (Debian's openssh-server: ``make sshd``) on its
lab address only, key authentication only, with a host key made for this lab. The client's
key and the ``known_hosts`` file that lists every host's key are in the lab's SSH directory.

    keys = SSHKeys.make(directory)             # the client's key, known_hosts
    host = add_ssh_host(lab, "h1", keys)       # a host with its sshd listening on port 22
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cluster import processes
from lab.core import Host, Lab, LabError

SSHD = "/usr/sbin/sshd"
INSIDE = "/etc/rd-ssh"  # where a host sees its sshd's config, host key and authorized keys
CONFIG = """\
ListenAddress {address}
Port 22
HostKey {inside}/ssh_host_ed25519_key
AuthorizedKeysFile {inside}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
"""


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (``path.pub`` beside it); its public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f",
                    str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


@dataclass(frozen=True)
class SSHKeys:
    directory: Path

    @classmethod
    def make(cls, directory: Path) -> SSHKeys:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = cls(directory)
        if not keys.identity.exists():
            keygen(keys.identity)
        keys.known_hosts.touch(mode=0o600)
        return keys

    @property
    def identity(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    def host_dir(self, name: str) -> Path:
        return self.directory / "hosts" / name


def add_ssh_host(lab: Lab, name: str, keys: SSHKeys, networks=("ws",),
                 authorized: Path | None = None, without_python: bool = False) -> Host:
    """A lab host running its own sshd; its key goes into ``keys.known_hosts`` under its
    address. ``authorized``: the public key it accepts (default: the lab's client key);
    ``without_python``: the system's python3 is not there (an empty file over it)."""
    if not Path(SSHD).exists():
        raise LabError("sshd is not installed (make sshd: Debian's openssh-server)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    here = keys.host_dir(name)
    here.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_key = keygen(here / "ssh_host_ed25519_key")
    accepted = (authorized or keys.identity.with_suffix(".pub")).read_text()
    (here / "authorized_keys").write_text(accepted)
    (here / "authorized_keys").chmod(0o600)
    dirs = {INSIDE: str(here)}
    if without_python:
        (here / "no-python").write_text("")
        dirs[str(Path("/usr/bin/python3").resolve())] = str(here / "no-python")
    host = lab.add_host(name, list(networks), dirs=dirs)
    (here / "sshd_config").write_text(CONFIG.format(address=host.address, inside=INSIDE))
    with keys.known_hosts.open("a") as f:
        f.write(f"{host.address} {' '.join(host_key.split()[:2])}\n")
    _start_sshd(lab, name, here)
    return host


def replace_host_key(lab: Lab, name: str, keys: SSHKeys) -> None:
    """The host as if rebuilt: a new host key, its sshd started again (known_hosts keeps the
    old one, as a client's would)."""
    here = keys.host_dir(name)
    for old in here.glob("ssh_host_ed25519_key*"):
        old.unlink()
    keygen(here / "ssh_host_ed25519_key")
    for process in lab.processes(name):
        if process["note"] == f"sshd of {name}":
            processes.stop_session(process["pid"], 2)
    _start_sshd(lab, name, here)


def _start_sshd(lab: Lab, name: str, here: Path) -> None:
    """The host's sshd (its log in ``here/sshd.log``), once it listens on port 22."""
    with (here / "sshd.log").open("ab") as log:
        lab.spawn(name, [SSHD, "-D", "-e", "-f", f"{INSIDE}/sshd_config"],
                  note=f"sshd of {name}", stdout=log)
    deadline = time.monotonic() + 10
    while not _listening(lab, name):
        if time.monotonic() > deadline:
            raise LabError(f"sshd of {name} is not listening after 10s: "
                           f"{(here / 'sshd.log').read_text()[-500:]}")
        time.sleep(0.1)


def _listening(lab: Lab, name: str) -> bool:
    out = lab.run(name, ["ss", "-ltnH", "sport = :22"], timeout=10).stdout
    return bool(out.strip())

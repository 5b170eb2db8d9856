"""The project on a host: where its copy, venv, files and logs are, and the archive that
copies it there.

The archive holds what git would (tracked files, and new ones it does not ignore) when the
project is a git checkout, else every file but the venv, caches and the state directory;
its digest (paths and contents) tells a host that has this very copy already.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

SKIPPED = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache",
           "node_modules"}


@dataclass(frozen=True)
class Remote:
    """A cluster's directories on one host (absolute)."""
    root: str

    @classmethod
    def under(cls, home: str, remote_dir: str, cluster: str) -> Remote:
        base = PurePosixPath(remote_dir.replace("~", home, 1) if remote_dir.startswith("~")
                             else remote_dir)
        return cls(str((base if base.is_absolute() else PurePosixPath(home) / base) / cluster))

    @property
    def project(self) -> str:
        return f"{self.root}/project"

    @property
    def venv(self) -> str:  # jobs/setup_environment.py builds it (RAYDEPLOY_VENV=.venv)
        return f"{self.project}/.venv"

    @property
    def files(self) -> str:
        return f"{self.root}/files"

    @property
    def logs(self) -> str:
        return f"{self.root}/logs"

    @property
    def runs(self) -> str:
        return f"{self.root}/runs"

    @property
    def wheelhouse(self) -> str:
        return f"{self.root}/wheelhouse"

    @property
    def marker(self) -> str:  # the digest of the copy the host has
        return f"{self.root}/project.sha256"


def files_of(directory: Path, state_dir: Path | None, use_git: bool = True) -> list[str]:
    """The project's files, relative, sorted."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=directory, capture_output=True) if use_git else None
    if listed is not None and listed.returncode == 0:
        names = [n for n in listed.stdout.decode().split("\0") if n]
        return sorted(n for n in names if (directory / n).is_file())
    skip_state = Path(state_dir).resolve() if state_dir else None
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in SKIPPED
                   and (skip_state is None or (Path(root) / d).resolve() != skip_state)]
        found += [str((Path(root) / f).relative_to(directory)) for f in files]
    return sorted(found)


def project_archive(directory: Path, state_dir: Path | None, use_git: bool = True
                    ) -> tuple[bytes, str]:
    """(a gzipped tar of the project's files, their digest); ``use_git``: git's list of
    them where there is one (else every file: a wheelhouse's wheels are often ignored)."""
    names = files_of(directory, state_dir, use_git)
    stamps = tuple((n, (directory / n).stat().st_mtime_ns, (directory / n).stat().st_size)
                   for n in names)
    return _archive(str(directory), stamps)


@lru_cache(maxsize=4)
def _archive(directory: str, stamps: tuple) -> tuple[bytes, str]:
    digest, buffer = hashlib.sha256(), io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name, _, _ in stamps:
            path = Path(directory) / name
            content = path.read_bytes()
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), path.stat().st_mode & 0o777
            info.mtime = int(path.stat().st_mtime)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue(), digest.hexdigest()

"""Random values a deployment keeps beside its store, in files of the state dir: the audit
chain's key (``audit.key``, unless ``RAYDEPLOY_AUDIT_KEY`` gives it) and the salt of its token
digests (``token.salt``).

Each is created once, 0600, by an exclusive create (of two processes starting at once, one
writes it and both read the same value), and read back as it is: an existing file is never
rewritten, and one that others may read or write, or that is not the state dir owner's, is
refused (a key others can read keys nothing)."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from core.errors import Unavailable
from store.state_dir import prepare_state_dir

AUDIT_KEY_FILE = "audit.key"
AUDIT_KEY_ENV = "RAYDEPLOY_AUDIT_KEY"
TOKEN_SALT_FILE = "token.salt"


class KeyFileError(Unavailable):
    """A key file of the state dir cannot be used (unsafe, unreadable, damaged)."""


def state_secret(state_dir: Path | str, name: str, nbytes: int = 32,
                 create: bool = True) -> bytes | None:
    """The value kept in ``state_dir/name`` (hex): created at random when missing and
    ``create``, else None when missing."""
    path = prepare_state_dir(state_dir) / name
    if not path.exists() and create:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another process made it meanwhile: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(nbytes) + "\n")
    return read_secret(path)


def read_secret(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KeyFileError(f"{path} cannot be read ({e.strerror})") from None
    with os.fdopen(fd) as f:
        info = os.fstat(f.fileno())
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} must be yours and private (chmod 600): others could "
                               f"read or change it (mode {stat.S_IMODE(info.st_mode):o})")
        text = f.read().strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < 16:
        raise KeyFileError(f"{path} does not hold a key (at least 32 hex digits)")
    return value


def audit_key(state_dir: Path | str, environ=None, create: bool = True) -> bytes | None:
    """The key of the audit chain: ``RAYDEPLOY_AUDIT_KEY`` (at least 16 characters; every
    process writing this store must have the same), else ``state_dir/audit.key``."""
    environ = os.environ if environ is None else environ
    given = environ.get(AUDIT_KEY_ENV)
    if given:
        if len(given) < 16:
            raise KeyFileError(f"{AUDIT_KEY_ENV} is shorter than 16 characters")
        return given.encode()
    return state_secret(state_dir, AUDIT_KEY_FILE, create=create)


def token_salt(state_dir: Path | str) -> bytes:
    """The salt of this deployment's token digests (not a secret: it makes a digest of one
    deployment useless against another)."""
    return state_secret(state_dir, TOKEN_SALT_FILE, nbytes=16)

"""Random values a deployment keeps beside its store, in files of the state dir: the audit
chain's key (``audit.key``, unless ``RAYDEPLOY_AUDIT_KEY`` gives it), and the mark that the
trail is keyed (``audit.keyed``).

Each is created once, 0600, by an exclusive create (of two processes starting at once, one
writes it and both read the same value), and read back as it is: an existing file is never
rewritten, and one that others may read or write, or that is not the state dir owner's, is
refused (a key others can read keys nothing)."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from store.db import StoreUnavailable
from store.state_dir import prepare_state_dir

AUDIT_KEY_FILE = "audit.key"
AUDIT_KEY_ENV = "RAYDEPLOY_AUDIT_KEY"


class KeyFileError(StoreUnavailable):
    """A key file of the state dir cannot be used (unsafe, unreadable, damaged)."""


def state_secret(state_dir: Path | str, name: str, nbytes: int = 32,
                 create: bool = True) -> bytes | None:
    """The value kept in ``state_dir/name`` (hex): created at random when missing and
    ``create``, else None when missing."""
    path = prepare_state_dir(state_dir) / name
    if not path.exists() and create:
        try:
            _create(path, secrets.token_hex(nbytes))
        except FileExistsError:
            pass  # another process made it meanwhile: read theirs
        except OSError as e:  # a read-only state dir, a full disk
            raise KeyFileError(f"{path} cannot be created ({e.strerror})") from None
    return read_secret(path)


def _create(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a reader never sees it half-written."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.link(temp, path)  # atomic, and never over an existing file
    finally:
        os.unlink(temp)


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


KEYED_MARKER = "audit.keyed"


def keyed_marker(state_dir: Path | str) -> str | None:
    """The id of the key this state dir's trail is chained with, or None when it was never
    keyed (a new store, or one of a version before the chain was keyed). A file beside the
    store, not a row in it: who can write the store only cannot make a keyed trail look like
    an old one (to have it chained again, forgeries included)."""
    path = Path(state_dir) / KEYED_MARKER
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KeyFileError(f"{path} cannot be read ({e.strerror})") from None


def claim_keying(state_dir: Path | str, key_id: str) -> bool:
    """Record that the trail is chained with the key ``key_id`` names; True for the one
    process that records it first (it chains the trail), False when it was there already."""
    path = Path(state_dir) / KEYED_MARKER
    try:
        _create(path, key_id)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise KeyFileError(f"{path} cannot be created ({e.strerror})") from None

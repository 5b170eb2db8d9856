"""The state directory holds the store, the Ray token and logs: it must be the user's own.

A missing one is created 0700. An existing one is used as it is, never chmod-ed (it may be
a directory the user chose for other reasons), and refused when another user owns it, when
others may write into it (they could swap the store or plant a token), or when others may
read or enter it (its logs, project files and store would be theirs to read)."""
from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from core.errors import Invalid


def prepare_state_dir(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        try:
            path.mkdir(mode=0o700, parents=True)
        except FileExistsError:  # another process created it meanwhile: check it below
            pass
        except OSError as e:
            raise Invalid(f"state dir {path} cannot be created: {e.strerror}",
                          field="state_dir") from None
    try:
        info = path.stat()
    except OSError as e:
        raise Invalid(f"state dir {path} cannot be read: {e.strerror}", field="state_dir") from None
    if not stat.S_ISDIR(info.st_mode):
        raise Invalid(f"state dir {path} is not a directory", field="state_dir")
    if info.st_uid != os.getuid():
        raise Invalid(f"state dir {path} belongs to another user (uid {info.st_uid}): use a "
                      f"directory of your own", field="state_dir")
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Invalid(f"state dir {path} is writable by others (mode {mode:o}): make it "
                      f"private (chmod 700 {shlex.quote(str(path))}) or use another directory",
                      field="state_dir")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Invalid(f"state dir {path} is readable by others (mode {mode:o}): its logs, "
                      f"project files and store would be theirs to read; make it private "
                      f"(chmod 700 {shlex.quote(str(path))}) or use another directory",
                      field="state_dir")
    return path

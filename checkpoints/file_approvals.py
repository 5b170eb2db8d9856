"""Approvals given as files (the older tool's ``checkpoint-NAME-approved``), made safe.

With ``approvals.file_dir`` set, a run waiting at gate NAME takes
``<file_dir>/checkpoint-NAME-approved`` as an approval only when:

- ``file_dir`` is a directory owned by the account running raydeploy and writable by nobody
  else (so nobody else can put, swap or rename a file there);
- the file is a regular file (not a link) owned by that account, writable by nobody else;
- one of its words is the fingerprint of the plan awaiting approval (a file cannot approve a
  plan its writer has not seen).

The words ``acknowledge-risks`` and ``acknowledge-breaking`` acknowledge a destructive or a
breaking plan, as the CLI flags do; a line ``reason: ...`` gives the reason. The decision then
goes through the same rules as every other approval (roles, policy, self-approval) as that
account with source ``file``, and is audited. The file is claimed by an atomic rename first (two
waiting processes cannot both use it), then left as ``...approved.used-<approval id>`` or
``...approved.refused-<time>``: one file approves at most once, and a refused one is not read
again. A refusal is audited and told on the run's output with its reason.
"""
from __future__ import annotations

import errno
import os
import pwd
import stat
import time
from pathlib import Path

from checkpoints import approvals, audit
from checkpoints.access import cli_actor
from checkpoints.plan import Gate
from core.errors import DomainError
from core.text import printable

MAX_BYTES = 4096
_told: set[str] = set()  # refusals of file_dir already said in this process


class Refused(Exception):
    pass


def file_for(file_dir: str | Path, checkpoint: str) -> Path:
    return Path(file_dir) / f"checkpoint-{checkpoint}-approved"


def take(ctx, checkpoint: str, gate: Gate) -> bool:
    """Use the approval file of ``checkpoint`` if there is one; True when it was recorded."""
    file_dir = ctx.config.approvals.file_dir
    if not file_dir:
        return False
    path = file_for(file_dir, checkpoint)
    if not os.path.lexists(path):  # the common case, polled while a run waits
        return False
    uid = os.geteuid()
    user = pwd.getpwuid(uid).pw_name
    actor = cli_actor(ctx.config, user, source="file")
    try:
        _check_owned(Path(file_dir), uid, user, "approvals.file_dir")
    except Refused as e:  # not ours to touch: say so once per process, leave it as it is
        if str(e) not in _told:
            _told.add(str(e))
            ctx.reporter.message(f"{checkpoint}: approval files are not read: {e}")
            audit.record(ctx.store, actor, "approval.file", checkpoint, "refused", reason=str(e))
        return False
    claimed = path.with_name(f"{path.name}.taking-{os.getpid()}")
    try:
        os.rename(path, claimed)  # atomic: of two waiting processes, one gets it
    except FileNotFoundError:
        return False
    request = ctx.store.approvals.open_request_for(checkpoint)
    try:
        words, reason = _read(claimed, uid, user)
        if request is None or request.fingerprint not in words:
            awaiting = f"plan {request.fingerprint}" if request else "no plan"
            raise Refused(f"{path.name} does not name the plan awaiting approval ({awaiting}); "
                          f"write its fingerprint into the file")
    except Refused as e:
        _refuse(ctx, actor, checkpoint, claimed, path, str(e))
        return False
    try:
        record = approvals.decide(ctx.store, actor, checkpoint, approvals.Ballot(
            "approve", ctx.run_id, request.fingerprint, reason or f"file {path.name}",
            acknowledge_risks="acknowledge-risks" in words,
            acknowledge_breaking="acknowledge-breaking" in words),
            approvals.GateRules.of(ctx, checkpoint))
    except DomainError as e:  # decide() audited the refusal
        _refuse(ctx, actor, checkpoint, claimed, path, str(e), audited=True)
        return False
    os.rename(claimed, path.with_name(f"{path.name}.used-{record.id}"))
    ctx.reporter.message(f"{checkpoint}: approved by {user} through {path} (approval {record.id})")
    return True


def _check_owned(path: Path, uid: int, user: str, what: str, st=None) -> None:
    st = st or os.stat(path)
    if st.st_uid != uid:
        raise Refused(f"{what} {path} is owned by uid {st.st_uid}, not by {user}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Refused(f"{what} {path} is writable by others than {user} (chmod go-w)")


def _read(path: Path, uid: int, user: str) -> tuple[list[str], str | None]:
    """The file's words and its ``reason:`` line; Refused unless it is a safe regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused(f"{path.name} is a symbolic link") from None
        raise Refused(f"{path.name} cannot be read ({e.strerror})") from None
    try:
        st = os.fstat(fd)  # the file opened, not whatever the name points at by now
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path.name} is not a regular file")
        _check_owned(path, uid, user, "approval file", st)
        if st.st_size > MAX_BYTES:
            raise Refused(f"{path.name} is larger than {MAX_BYTES} bytes")
        text = os.read(fd, MAX_BYTES).decode("utf-8", "replace")
    finally:
        os.close(fd)
    reason = next((printable(line.split(":", 1)[1].strip())[:500] for line in text.splitlines()
                   if line.strip().lower().startswith("reason:")), None)
    return text.split(), reason or None


def _refuse(ctx, actor, checkpoint: str, claimed: Path, path: Path, why: str,
            audited: bool = False) -> None:
    kept = path.with_name(f"{path.name}.refused-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.rename(claimed, kept)
    except OSError:
        kept = claimed
    if not audited:
        audit.record(ctx.store, actor, "approval.file", checkpoint, "refused", reason=why)
    ctx.reporter.message(f"{checkpoint}: approval file refused: {why} (kept as {kept.name})")

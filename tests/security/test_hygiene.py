"""Secrets and local hygiene: what node processes inherit, what the API returns, the state
dir, temp dirs, the tokens file, unusable inputs (one line, exit 2, nothing half-written),
and untrusted text printed with its control characters escaped."""
from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from store import Store
from tests.conftest import cli, write_config
from tests.security.conftest import awaiting, make_app


def test_node_processes_do_not_inherit_the_deployers_secrets(tmp_path, monkeypatch):
    from cluster.platforms.local import LocalPlatform
    from cluster.platforms.records import AppSpec
    monkeypatch.setenv("CML_API_KEY", "deployer-secret-key")
    monkeypatch.setenv("RAYDEPLOY_API_TOKENS", "a:admin:deployer-secret-token-0123")
    project = tmp_path / "project"
    project.mkdir()
    (project / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    platform = LocalPlatform(Store(tmp_path / "state"), project, tmp_path / "state")
    app = platform.create_app(AppSpec(name="n", script="sleeper.py", cpu=1, memory=1,
                                      env={"RAYDEPLOY_ROLE": "worker"}))
    try:
        pid = platform.store.platform_records.app(app.id)["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert "RAYDEPLOY_ROLE" in names and "PATH" in names
        assert "CML_API_KEY" not in names and "RAYDEPLOY_API_TOKENS" not in names
    finally:
        platform.delete_app(app.id)


@pytest.mark.integration
def test_the_ray_token_is_in_no_api_answer(cluster):
    from tests.conftest import ApiServer
    token = (cluster.state_dir / "ray_token").read_text().strip()
    server = ApiServer(cluster.config_path)
    try:
        answers = [requests.get(f"{server.url}{path}", timeout=30).text for path in (
            "/api/v1/resources/nodes", "/api/v1/cluster/info", "/api/v1/cluster/status",
            "/api/v1/applications", "/api/v1/applications/management-api",
            "/api/v1/applications/hello", "/api/v1/deployments", "/api/v1/checkpoints",
            "/api/v1/audit", "/api/v1/approvals")]
        assert all(token not in answer for answer in answers)
    finally:
        server.stop()


def test_a_state_dir_others_can_write_is_refused_and_left_as_it_is(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = cli("--status", "--state-dir", str(shared))
    assert result.returncode == 2 and "writable by others" in result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777  # never chmod-ed
    assert not (shared / "state.db").exists()


def test_a_state_dir_others_can_read_is_refused_with_the_chmod_to_run(tmp_path):
    """Its logs, project files and store would be world-readable."""
    readable = tmp_path / "readable"
    readable.mkdir()
    readable.chmod(0o755)
    result = cli("--status", "--state-dir", str(readable))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "readable by others" in result.stderr and f"chmod 700 {readable}" in result.stderr
    assert stat.S_IMODE(readable.stat().st_mode) == 0o755  # never chmod-ed
    assert not (readable / "state.db").exists()
    readable.chmod(0o700)  # once private, it is used
    assert cli("--status", "--state-dir", str(readable)).returncode == 0


def test_a_state_dir_the_tool_creates_is_private(tmp_path):
    Store(tmp_path / "new" / "state")
    assert stat.S_IMODE((tmp_path / "new" / "state").stat().st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory of another user")
def test_a_state_dir_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    result = cli("--status", "--state-dir", str(theirs))
    assert result.returncode == 2 and "belongs to another user" in result.stderr


def test_the_ray_temp_dir_is_made_by_mkdtemp_and_private(tmp_path):
    from checkpoints.factory import make_context
    from cluster.config import parse_config
    ctx = make_context(parse_config({"state_dir": str(tmp_path / "s")}, environ={}))
    first = ctx.cluster.lifecycle.temp_dir
    try:
        info = os.lstat(first)
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
        assert ctx.cluster.lifecycle.temp_dir == first  # recorded, reused
        os.rmdir(first)
        os.symlink(tmp_path, first)  # somebody plants a link where it was
        second = ctx.cluster.lifecycle.temp_dir
        assert second != first and not os.path.islink(second)
    finally:
        for path in (first, ctx.cluster.lifecycle.temp_dir):
            with contextlib.suppress(OSError):
                os.unlink(path) if os.path.islink(path) else os.rmdir(path)


def test_a_tokens_file_others_can_read_is_refused(tmp_path):
    from checkpoints.access import AccessConfigError
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - {principal: a, roles: [admin], token: aaaaaaaaaaaaaaaaaaaa}\n")
    tokens.chmod(0o644)
    with pytest.raises(AccessConfigError, match="readable or writable by others"):
        make_app(tmp_path, api={"tokens_file": str(tokens)})


def test_one_token_for_two_principals_is_refused(tmp_path):
    from checkpoints.access import AccessConfigError
    with pytest.raises(AccessConfigError, match="two principals"):
        make_app(tmp_path, tokens="a:admin:same-token-0123456789,b:viewer:same-token-0123456789")


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(lines) <= 2, result.stderr
    return result.stderr


@pytest.mark.parametrize("make,expected", [
    (lambda p: p.write_bytes(b"workers: {count: \xff\xfe}\n"), "not UTF-8"),
    (lambda p: p.mkdir(), "is a directory"),
])
def test_an_unreadable_config_is_one_line_and_exit_2(tmp_path, make, expected):
    path = tmp_path / "c.yaml"
    make(path)
    assert expected in one_line_error(cli("--status", config=path))


def test_a_corrupted_store_is_one_line_and_exit_2_and_a_503_in_the_api(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "state.db").write_bytes(b"this is not a database" * 100)
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(state)})
    assert "cannot be used" in one_line_error(cli("--status", config=config))
    (tmp_path / "api").mkdir()
    app = make_app(tmp_path / "api")
    app.extensions["raydeploy"].store.db.close()
    for name in ("state.db-wal", "state.db-shm"):
        (tmp_path / "api" / "state" / name).unlink(missing_ok=True)
    (tmp_path / "api" / "state" / "state.db").write_bytes(b"garbage" * 1000)
    response = app.test_client().get("/api/v1/deployments")
    assert response.status_code == 503 and "state store" in response.get_json()["message"]


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_read_only_state_dir_is_one_line_and_exit_2(tmp_path):
    state = tmp_path / "state"
    Store(state)  # a store with its schema, then the disk goes read-only
    with tmpfs(tmp_path / "ro", "size=4m,mode=0700") as ro:
        for name in ("state.db",):
            (ro / name).write_bytes((state / name).read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        config = write_config(tmp_path / "c.yaml", {"state_dir": str(ro)})
        assert "state store" in one_line_error(cli("--deploy", config=config))


def test_a_full_disk_is_one_line_and_exit_2_with_nothing_half_written(tmp_path):
    with tmpfs(tmp_path / "small", "size=1m,mode=0700") as small:
        config = write_config(tmp_path / "c.yaml", {"state_dir": str(small)})
        filler = small / "filler"
        with contextlib.suppress(OSError):  # leave the store no room
            filler.write_bytes(b"\0" * 1024 * 1024)
        result = cli("--status", config=config)
        assert "state store" in one_line_error(result)
        filler.unlink()
        assert cli("--status", config=config).returncode == 0  # usable again, intact


def test_untrusted_text_is_printed_with_control_characters_escaped(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state")})
    awaiting(Store(tmp_path / "state"))
    evil = "fine\x1b[2J\x1b[1;1Happroved by admin\rok"
    result = cli("reject", "worker_launch", "--reason", evil, "--operator", "x\x07y",
                 config=config)
    assert result.returncode == 0
    status = cli("--status", config=config)
    for output in (result.stdout, status.stdout):
        assert "\x1b" not in output and "\x07" not in output and "\r" not in output
    assert "\\x1b[2J" in status.stdout
    trail = cli("audit", "--format", "jsonl", config=config).stdout
    assert json.loads(trail.splitlines()[0])["detail"]["reason"] == evil  # kept as given
    assert time.time()  # (the trail keeps the raw text; only printing escapes it)

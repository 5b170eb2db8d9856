"""Trust boundary 9 and the CLI's identity: without tokens there is one identity, so a policy
that needs approvers told apart refuses to start; the CLI (embedded mode) takes its roles
from a tokens file its caller cannot rewrite, never from its caller's environment."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from checkpoints.access import AccessConfigError
from store import Store
from tests.conftest import ROOT, clean_env, cli, os_user, write_config
from tests.security.conftest import awaiting, make_app

TWO = {"policy": {"worker_launch": {"min_approvals": 2, "distinct": True}}}


def tokens_file(path: Path, roles: str, name: str | None = None) -> Path:
    path.write_text(f"tokens:\n  - {{principal: {name or os_user()}, roles: [{roles}], "
                    f"token: {'t' * 32}}}\n")
    path.chmod(0o600)
    return path


def test_without_tokens_one_person_cannot_be_two_distinct_approvers(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                                "approvals": TWO})
    store = Store(tmp_path / "state")
    awaiting(store, requester="olga")
    approve = cli("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert approve.returncode == 2 and "one identity" in approve.stderr, approve.stderr
    assert "approvals.policy.worker_launch (min_approvals 2, distinct)" in approve.stderr
    assert "Traceback" not in approve.stderr
    run = cli("--checkpoint", "project_setup", config=config)
    assert run.returncode == 2 and "nothing was started" in run.stderr
    assert store.approvals.decisions() == [] and len(store.runs.list_runs()) == 1  # only the fixture's
    with pytest.raises(AccessConfigError, match="one identity"):  # nor does the API start
        (tmp_path / "api").mkdir()
        make_app(tmp_path / "api", approvals=TWO)
    served = subprocess.run([sys.executable, "-m", "api_server", "--config", str(config),
                             "--port", "9"], cwd=ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=60)
    assert served.returncode == 2 and "one identity" in served.stderr


@pytest.mark.parametrize("rule", [{"policy": {"teardown": {"exclude_requester": True}}},
                                  {"forbid_self_approval": True}])
def test_other_rules_that_tell_people_apart_need_tokens_too(tmp_path, rule):
    with pytest.raises(AccessConfigError, match="one identity"):
        make_app(tmp_path, approvals=rule)
    make_app(tmp_path, tokens="alice:approver:alice-token-0123456789", approvals=rule)


def test_the_cli_takes_no_roles_from_its_callers_environment(tmp_path):
    """The finding: an operator-only OS user set RAYDEPLOY_API_TOKENS=<itself>:approver:... and
    approved."""
    tokens = tokens_file(tmp_path / "tokens.yaml", "operator")
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                                "api": {"tokens_file": str(tokens)}})
    store = Store(tmp_path / "state")
    awaiting(store, requester="olga")
    forged = clean_env(RAYDEPLOY_API_TOKENS=f"{os_user()}:approver:{'x' * 16}")
    result = cli("approve", "worker_launch", "--acknowledge-risks", config=config, env=forged)
    assert result.returncode == 2 and "lacks the approver role" in result.stderr
    assert store.approvals.decisions() == []


def test_environment_tokens_alone_give_the_cli_no_roles(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state")})
    store = Store(tmp_path / "state")
    awaiting(store, requester="olga")
    forged = clean_env(RAYDEPLOY_API_TOKENS=f"{os_user()}:admin:{'x' * 16}")
    result = cli("approve", "worker_launch", "--acknowledge-risks", config=config, env=forged)
    assert result.returncode == 2 and "never from RAYDEPLOY_API_TOKENS" in result.stderr
    assert store.approvals.decisions() == []
    unset = cli("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert unset.returncode == 0, unset.stderr  # no principals anywhere: single user


NOBODY = 65534


@pytest.fixture
def shared(tmp_path):
    """A deployment whose state dir belongs to the account ``nobody`` and whose tokens file
    belongs to root (this test's account): what an admin-managed roles file looks like."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another account")
    reads = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                            "test", "-r", str(ROOT / "deploy_master.py")], capture_output=True)
    if reads.returncode != 0:  # a checkout in a private home (0700 /root): not this test's to fix
        pytest.skip(f"the account nobody cannot read this checkout ({ROOT})")
    base = Path(tempfile.mkdtemp(prefix="rd-identity-"))
    base.chmod(0o755)
    try:
        tokens = base / "tokens.yaml"
        tokens.write_text("tokens:\n  - {principal: nobody, roles: [approver], "
                          f"token: {'n' * 32}}}\n")
        tokens.chmod(0o644)  # readable by the CLI's caller, writable by root only
        config = write_config(base / "c.yaml", {"state_dir": str(base / "state"),
                                                "api": {"tokens_file": str(tokens)}})
        awaiting(Store(base / "state"), requester="olga")
        for path in [base / "state", *(base / "state").iterdir()]:
            os.chown(path, NOBODY, NOBODY)
        yield base, tokens, config
    finally:
        shutil.rmtree(base)


def as_nobody(*args, config: Path, env: dict | None = None):
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", sys.executable, str(ROOT / "deploy_master.py"),
                           "--config", str(config), *args], cwd=ROOT,
                          env={**(env or clean_env()), "HOME": "/tmp"}, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_roles_file_the_caller_cannot_rewrite_gives_its_roles(shared):
    base, _, config = shared
    result = as_nobody("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert result.returncode == 0, result.stderr
    assert [a.approver for a in approvals_in(base)] == ["nobody"]


def test_a_roles_file_of_another_account_that_the_caller_can_rewrite_gives_none(shared):
    base, tokens, config = shared
    tokens.chmod(0o666)
    result = as_nobody("approve", "worker_launch", "--acknowledge-risks", config=config)
    assert result.returncode == 2 and "can change it" in result.stderr, result.stderr
    assert approvals_in(base) == []


def approvals_in(base: Path) -> list:
    """The approvals in nobody's store, read as root (without taking the state dir over)."""
    import sqlite3

    from store.approvals import _approval
    with sqlite3.connect(base / "state" / "state.db") as db:
        db.row_factory = sqlite3.Row
        return [_approval(r) for r in db.execute("SELECT * FROM approvals")]

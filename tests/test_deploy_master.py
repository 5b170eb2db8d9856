"""The CLI's contract without a cluster: usage, broken configs, exit codes."""
import socket
import time

import pytest

from tests.conftest import clean_env, cli, write_config


def test_no_action_prints_help_and_exits_2():
    result = cli()
    assert result.returncode == 2 and "--deploy" in result.stdout


def test_broken_config_lists_every_error_and_starts_nothing(tmp_path):
    state = tmp_path / "state"
    path = write_config(tmp_path / "bad.yaml", {
        "state_dir": str(state), "workers": {"count": "two", "cpu": -1},
        "head": {"memory": 0}, "unknown_key": 1,
        "serve": {"applications": [{"name": "x", "import_path": "bad", "route_prefix": "x"}]}})
    result = cli("--deploy", "--auto-approve", config=path)
    assert result.returncode == 2
    for field in ("workers.count", "workers.cpu", "head.memory", "unknown_key",
                  "serve.applications.0.import_path", "serve.applications.0.route_prefix"):
        assert field in result.stderr
    assert "Traceback" not in result.stderr
    assert not state.exists()  # nothing recorded, nothing started


def test_unknown_checkpoint_is_a_usage_error(tmp_path):
    result = cli("--checkpoint", "nope")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_approve_with_nothing_awaiting(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s")})
    result = cli("approve", "worker_launch", "--acknowledge-risks", config=path)
    assert result.returncode == 1 and "awaiting approval" in result.stderr


def test_resume_with_no_run(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s")})
    result = cli("--resume", config=path)
    assert result.returncode == 1 and "no run to resume" in result.stderr


@pytest.mark.parametrize("host", ["refusing", "silent"])
def test_an_unreachable_platform_is_one_line_within_its_timeout(tmp_path, host):
    """`--status` against a CML host that refuses connections, or accepts and never answers:
    one line and exit 1 within cml.timeout_seconds (plus Python's start), no traceback."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        if host == "silent":
            listener.listen(0)  # the kernel completes handshakes; nobody ever answers
        port = listener.getsockname()[1]
        path = write_config(tmp_path / "c.yaml", {
            "state_dir": str(tmp_path / "s"), "platform": "cml",
            "cml": {"host": f"http://127.0.0.1:{port}", "timeout_seconds": 2}})
        started = time.monotonic()
        result = cli("--status", config=path, env=clean_env(CML_API_KEY="k" * 20))
        took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "did not answer" in errors[0], result.stderr
    assert took < 2 + 4, took  # the budget, plus the interpreter's start


def test_a_run_says_it_ignores_ray_address(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s")})
    result = cli("--checkpoint", "prerequisites", config=path,
                 env=clean_env(RAY_ADDRESS="127.0.0.1:6379"))
    assert "warning: RAY_ADDRESS is ignored here" in result.stdout, result.stdout + result.stderr
    quiet = cli("--checkpoint", "prerequisites", config=path)
    assert "RAY_ADDRESS" not in quiet.stdout

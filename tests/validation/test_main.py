"""python -m validation without a cluster: what it says about the config, and its exit codes."""
from __future__ import annotations

import socket

from tests.conftest import write_config
from validation.__main__ import main


def refusing_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_config_warnings_go_to_stderr_and_json_stays_clean(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CML_API_KEY", "k" * 20)
    for var in ("CML_HOST", "CML_PROJECT_ID", "CDSW_PROJECT_ID", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    path = write_config(tmp_path / "seed.yaml", {
        "state_dir": str(tmp_path / "s"),
        "cai": {"host": f"http://127.0.0.1:{refusing_port()}",
                "resources": {"cpu": 2, "memory": 8}},
        "cml": {"timeout_seconds": 0.5}})
    code = main(["--config", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1  # the workspace does not answer: a failed check, not a crash
    assert ("warning: cai: head_resources absent: the head uses the worker resources "
            "(2 CPU, 8 GiB)") in err
    assert out.lstrip().startswith("{") and "warning" not in out


def test_a_bad_address_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s")})
    assert main(["--config", str(path), "--address", "auto"]) == 2
    assert "'auto' and 'local'" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", "grpc://127.0.0.1:1")
    assert main(["--config", str(path)]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_an_address_nothing_answers_at_is_a_failed_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{refusing_port()}")
    path = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "s")})
    assert main(["--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  head" in out and "nothing answers" in out

"""What the CLI prints: lines with control characters escaped, how to use the cluster (never
its token), the endpoints, and one line per checkpoint with a status line while waiting."""
import shlex
import sys

import pytest

from cli import output
from cli.output import (
    LineReporter,
    cluster_usage,
    ray_command,
    say,
    say_config_warnings,
    say_endpoints,
    status_document,
)
from cluster.config import parse_config
from core.facts import Outcome
from tests.fakes import CONFIGURED, FakeClock

INFO = {"head_address": "127.0.0.2:6379", "dashboard_url": "http://127.0.0.2:8265",
        "serve_url": "http://127.0.0.2:8000", "client_address": "ray://127.0.0.2:10001",
        "management_api_url": "http://127.0.0.2:8000/api", "prometheus_url": "http://127.0.0.2:9090"}


def config(tmp_path, **doc):
    return parse_config({"state_dir": str(tmp_path / "state"), "cluster_name": "rd",
                         "serve": {"applications": [CONFIGURED]}, **doc}, environ={})


def test_a_line_is_printed_with_control_characters_escaped_and_its_newlines_kept(capsys):
    say("app \x1b[2Kevil\nsecond line")
    say("to stderr", err=True)
    out, err = capsys.readouterr()
    assert out == "app \\x1b[2Kevil\nsecond line\n" and err == "to stderr\n"


def test_each_config_warning_is_said_once(tmp_path, capsys):
    say_config_warnings(config(tmp_path, head={"cpu": 1, "memory": 1, "gpus": 1}))
    assert capsys.readouterr().out == \
        "warning: head.gpus=1 ignored: the head node always gets 0 GPUs\n"
    say_config_warnings(config(tmp_path))
    assert capsys.readouterr().out == ""


def test_the_ray_beside_this_interpreter_is_named_by_its_full_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "my venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ray").write_text("")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert ray_command() == shlex.quote(str(bin_dir / "ray"))


def test_without_a_ray_beside_it_the_one_on_path_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    on_path = tmp_path / "path"
    on_path.mkdir()
    ray = on_path / "ray"
    ray.write_text("#!/bin/sh\n")
    ray.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    assert ray_command() == "ray"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # none anywhere: the full path, said
    assert ray_command() == shlex.quote(str(tmp_path / "ray"))


def test_a_ray_user_is_told_how_to_submit_a_job_and_where_the_token_is(tmp_path):
    usage = cluster_usage(INFO, config(tmp_path), "/home/me/state dir/ray_token", where="the VPN")
    assert usage["jobs_address"] == "http://127.0.0.2:8265"
    assert usage["token_path"] == "/home/me/state dir/ray_token"
    assert usage["client_address"] == "ray://127.0.0.2:10001" and usage["reachable_from"] == "the VPN"
    words = shlex.split(usage["job_submit"])
    assert words[:2] == ["RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN_PATH=/home/me/state dir/ray_token"]
    assert words[3:] == ["job", "submit", "--address", "http://127.0.0.2:8265", "--working-dir",
                         ".", "--", "python", "my_script.py"]


def test_without_a_known_token_file_the_user_is_told_what_to_point_at(tmp_path):
    usage = cluster_usage(INFO, config(tmp_path), None)
    assert "RAY_AUTH_TOKEN_PATH=<its ray_token file>" in usage["job_submit"]
    assert usage["token_path"] is None


def test_a_cluster_without_token_auth_needs_no_token(tmp_path):
    usage = cluster_usage(INFO, config(tmp_path, ray={"auth": "none"}), "/s/ray_token")
    assert usage["token_path"] is None and "RAY_AUTH" not in usage["job_submit"]


def test_a_cluster_without_a_dashboard_gives_no_usage(tmp_path):
    assert cluster_usage({"head_address": "h:6379"}, config(tmp_path), "/s/ray_token") == {}


def test_the_status_document_holds_the_run_nodes_endpoints_and_usage(tmp_path):
    document = status_document(config(tmp_path), {"id": "run-1"}, [{"name": "rd-head"}], INFO,
                               {"jobs_address": "x"})
    assert document == {"cluster_name": "rd", "platform": "local", "last_run": {"id": "run-1"},
                        "nodes": [{"name": "rd-head"}], "endpoints": INFO,
                        "usage": {"jobs_address": "x"}}


def test_the_endpoints_name_each_configured_app_and_how_to_use_the_cluster(tmp_path, capsys):
    cfg = config(tmp_path, monitoring={"enabled": True})
    say_endpoints(INFO, cfg, cluster_usage(INFO, cfg, "/s/ray_token"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["  head address : 127.0.0.2:6379", "  dashboard    : http://127.0.0.2:8265",
                         "  app hello    : http://127.0.0.2:8000/hello"]
    assert "  management API: http://127.0.0.2:8000/api  (docs: /docs)" in lines
    assert f"(Grafana dashboards: {tmp_path / 'state' / 'grafana'})" in lines[4]
    assert lines[5] == "using the cluster:"
    assert lines[6].startswith("  a Ray job    : RAY_AUTH_MODE=token")
    assert lines[7].startswith('  Ray Client   : ray.init("ray://127.0.0.2:10001") (the same RAY_AUTH_*')


def test_apps_behind_a_platforms_login_are_given_by_its_public_url(tmp_path, capsys):
    cfg = config(tmp_path, serve={"applications": [CONFIGURED], "management_api": {"enabled": False}})
    say_endpoints({**INFO, "head_url": "https://head.example.com"}, cfg,
                  {"job_submit": "ray job submit", "reachable_from": "the project's sessions"})
    out = capsys.readouterr().out
    assert ("  app hello    : https://head.example.com/hello  (the platform's login; inside: "
            "http://127.0.0.2:8000/hello)") in out
    assert "management API" not in out and "prometheus" not in out and "Ray Client" not in out
    assert "using the cluster (from the project's sessions):" in out


def test_a_cluster_that_is_not_up_has_no_endpoints_to_say(tmp_path, capsys):
    say_endpoints({"serve_url": "http://x"}, config(tmp_path), {"job_submit": "ray"})
    assert capsys.readouterr().out == ""


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(output, "time", clock)  # the reporter's monotonic time
    return clock


def test_each_checkpoint_ends_in_one_line_and_a_failure_says_why_indented(clock, capsys):
    reporter = LineReporter()
    reporter.checkpoint_started("head_launch", 4, 8)
    reporter.checkpoint_finished("head_launch", "succeeded", 1.234)
    reporter.checkpoint_started("worker_launch", 5, 8)
    reporter.checkpoint_finished("worker_launch", Outcome.FAILED, 2, detail="no room\nfor w-2")
    reporter.checkpoint_started("serve_deploy", 6, 8)
    reporter.checkpoint_finished("serve_deploy", Outcome.SKIPPED, 0, detail="not shown")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[4/8] head_launch" + " " * 15 + " done (1.23s)"
    assert lines[1] == "[5/8] worker_launch" + " " * 13 + " failed (2.00s)"
    assert [line.strip() for line in lines[2:4]] == ["no room", "for w-2"]
    assert all(line.startswith("    ") for line in lines[2:4])  # under its checkpoint's line
    assert lines[4:] == ["[6/8] serve_deploy" + " " * 14 + " skipped (satisfied) (0.00s)"]


def test_while_waiting_a_status_line_comes_at_most_every_ten_seconds(clock, capsys):
    reporter = LineReporter()
    reporter.checkpoint_started("head_launch", 4, 8)
    for _ in range(25):  # a wait that reports every second for 25 s
        clock.advance(1)
        reporter.waiting("waiting for the head")
    assert capsys.readouterr().out.splitlines() == ["    ... waiting for the head"] * 2
    reporter.message("head up")
    clock.advance(9)
    reporter.waiting("still")
    assert capsys.readouterr().out == "    head up\n"  # a message counts as output

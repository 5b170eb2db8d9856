"""gunicorn.conf.py as gunicorn reads it: the control plane is one process (it owns the store,
runs the runs and their threads), whatever GUNICORN_WORKERS says; a second worker of it could
not take the store anyway. Read through gunicorn's own config loader; no server starts."""
from __future__ import annotations

import contextlib
import os
import sys
from types import SimpleNamespace
from unittest import mock

import pytest

# imported (and prometheus_client with it) before any test sets PROMETHEUS_MULTIPROC_DIR
from api_server import create_app
from api_server.settings import Settings
from cluster.config import parse_config
from store import StoreOwned
from tests.conftest import ROOT, write_config

CONF = str(ROOT / "api_server" / "gunicorn.conf.py")
OURS = ("RAYDEPLOY_CONTROL_PLANE", "RAYDEPLOY_CONFIG", "RAYDEPLOY_STATE_DIR", "RAYDEPLOY_BASE_DIR",
        "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY",
        "RAYDEPLOY_API_HOST", "RAYDEPLOY_API_PORT", "CDSW_APP_PORT", "CDSW_DOMAIN",
        "RAYDEPLOY_API_TOKENS",
        "RAYDEPLOY_API_TOKEN_DIGESTS", "RAYDEPLOY_PUBLIC_URL", "RAYDEPLOY_SSE_LIMIT")


@contextlib.contextmanager
def environment(tmp_path, **env):
    """os.environ with ``env`` (and none of the variables the config reads otherwise); the
    config's own setdefaults are undone afterwards."""
    with mock.patch.dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)):
        for name in OURS:
            os.environ.pop(name, None)
        os.environ.update(env)
        yield


def gunicorn_config(monkeypatch):
    """The settings gunicorn runs with: ``gunicorn -c api_server/gunicorn.conf.py app``."""
    from gunicorn.app.wsgiapp import WSGIApplication
    monkeypatch.chdir(ROOT)  # gunicorn chdirs to its chdir setting; put back afterwards
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", CONF, "api_server.wsgi:app"])
    return WSGIApplication().cfg


class Log:
    def __init__(self):
        self.warnings, self.errors = [], []

    def warning(self, message, *args):
        self.warnings.append(message % args)

    def error(self, message, *args):
        self.errors.append(message % args)


def test_the_control_plane_runs_one_gunicorn_worker_whatever_gunicorn_workers_says(
        tmp_path, monkeypatch):
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                                "cluster_name": "one"})
    with environment(tmp_path, RAYDEPLOY_CONTROL_PLANE="1", GUNICORN_WORKERS="3",
                     WEB_CONCURRENCY="3", GUNICORN_THREADS="16", RAYDEPLOY_CONFIG=str(config)):
        cfg = gunicorn_config(monkeypatch)
        assert cfg.workers == 1
        assert cfg.worker_class_str == "gthread" and cfg.threads == 16  # threads serve the API
        log = Log()
        arbiter = SimpleNamespace(log=log, cfg=cfg, num_workers=cfg.workers)
        cfg.on_starting(arbiter)  # loopback, no tokens: it starts
    assert log.errors == [] and arbiter.num_workers == 1
    assert any("GUNICORN_WORKERS and -w are ignored" in w for w in log.warnings), log.warnings


def test_a_control_plane_started_with_w_3_still_spawns_one_worker(tmp_path, monkeypatch):
    """``-w 3`` on the command line outranks the file's ``workers``: the arbiter's count (read
    from it before on_starting, used after it to spawn) is set back to one."""
    config = write_config(tmp_path / "c.yaml", {"state_dir": str(tmp_path / "state"),
                                                "cluster_name": "one"})
    with environment(tmp_path, RAYDEPLOY_CONTROL_PLANE="1", RAYDEPLOY_CONFIG=str(config)):
        from gunicorn.app.wsgiapp import WSGIApplication
        monkeypatch.chdir(ROOT)
        monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", CONF, "-w", "3", "api_server.wsgi:app"])
        cfg = WSGIApplication().cfg
        assert cfg.workers == 3  # (what gunicorn makes of it before the hook)
        log = Log()
        arbiter = SimpleNamespace(log=log, cfg=cfg, num_workers=cfg.workers)
        cfg.on_starting(arbiter)
    assert arbiter.num_workers == 1 and log.errors == []


def test_a_server_that_is_not_the_control_plane_takes_gunicorn_workers(tmp_path, monkeypatch):
    with environment(tmp_path, GUNICORN_WORKERS="3"):
        assert gunicorn_config(monkeypatch).workers == 3


def test_a_second_worker_of_a_control_plane_cannot_take_its_store(tmp_path):
    """What ``gunicorn -w 3`` (the command line outranks the config file) would meet: each
    worker makes the app, and only the first owns the store; the others fail to boot."""
    config = parse_config({"state_dir": str(tmp_path / "state"), "project_dir": str(tmp_path)},
                          environ={})
    settings = Settings(control_plane=True, public_url="http://127.0.0.1:8080")
    first = create_app(settings, config)
    store = first.extensions["raydeploy"].store
    assert store.ownership is not None  # the control plane is the store's owner
    with pytest.raises(StoreOwned, match="owned by another control plane"):
        create_app(settings, config)
    store.kv.set("still", "the first one's")
    store.close()

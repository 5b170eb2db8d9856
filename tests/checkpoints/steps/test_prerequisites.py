"""prerequisites on CML: an embedded run (no control plane) with nodes on hosts of their own
has nothing for the cluster's management API to forward to, and says so before anything is
made. The CML platform here talks to nothing (a closed port on this machine); the fakes of
tests/fakes.py tell nodes on one host network from nodes on hosts of their own."""
from __future__ import annotations

import socket

import pytest

from checkpoints.factory import make_context
from checkpoints.steps.prerequisites import Prerequisites
from cluster.config import parse_config
from cluster.platforms.cml.platform import CMLPlatform
from tests.fakes import world

NO_CONTROL_PLANE = "the cluster's management API forwards to its control plane, and this run has none"


@pytest.fixture
def nowhere() -> str:
    """A CML host that refuses every connection at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def embedded_on_cml(tmp_path, host: str, management_api: bool = True):
    """The context an embedded run on CML gets: the platform names no control plane."""
    config = parse_config({
        "cluster_name": "rd", "state_dir": str(tmp_path / "s"), "platform": "cml",
        "cml": {"host": host, "api_key": "k" * 20, "control_plane": "embedded",
                "shared_host_network": False, "timeout_seconds": 0.5},
        "serve": {"management_api": {"enabled": management_api}}}, environ={})
    ctx = make_context(config)
    ctx.control_plane_url = CMLPlatform.control_plane_url(config, [], say=lambda line: None)
    return ctx


def test_embedded_on_a_platform_of_many_hosts_with_the_management_api_is_refused(tmp_path,
                                                                                  nowhere):
    ctx = embedded_on_cml(tmp_path, nowhere)
    assert ctx.control_plane_url is None and not ctx.platform.shares_host_network
    problems = [p for p in Prerequisites().problems(ctx) if NO_CONTROL_PLANE in p]
    assert len(problems) == 1
    assert "embedded, with nodes on hosts of their own" in problems[0]
    assert "cml.control_plane: app" in problems[0]  # what to do instead
    assert "serve.management_api.enabled: false" in problems[0]


def test_the_same_run_through_a_control_plane_or_without_the_management_api_is_not(tmp_path,
                                                                                   nowhere):
    ctx = embedded_on_cml(tmp_path / "plane", nowhere)
    ctx.control_plane_url = "https://rd-control.ml.example"  # the control app runs it
    assert not any(NO_CONTROL_PLANE in p for p in Prerequisites().problems(ctx))
    ctx = embedded_on_cml(tmp_path / "no-api", nowhere, management_api=False)
    assert not any(NO_CONTROL_PLANE in p for p in Prerequisites().problems(ctx))


def test_embedded_with_every_node_on_one_host_network_is_not_refused(tmp_path):
    w = world(tmp_path, mgmt=True)  # the local platform, CML's simulator: one host network
    assert w.ctx.control_plane_url is None
    assert not any(NO_CONTROL_PLANE in p for p in Prerequisites().problems(w.ctx))
    w.platform.shares_host_network = False  # the same run, its nodes on hosts of their own
    assert any(NO_CONTROL_PLANE in p for p in Prerequisites().problems(w.ctx))


MONITORING_REFUSED = "Prometheus reads Ray's target list on the head's host"


def test_monitoring_needs_prometheus_beside_the_head(tmp_path, monkeypatch):
    """Prometheus reads the head's target file: nodes on one host network, or a platform
    that runs it on the head's host, may monitor; others are refused before anything is made."""
    w = world(tmp_path / "one", monitoring={"enabled": True})
    assert not any(MONITORING_REFUSED in p for p in Prerequisites().problems(w.ctx))
    w.platform.shares_host_network = False  # hosts of their own, nothing beside the head
    refused = [p for p in Prerequisites().problems(w.ctx) if MONITORING_REFUSED in p]
    assert len(refused) == 1 and "runs it beside the head" in refused[0]
    monkeypatch.setattr(type(w.platform), "beside_head", True)  # as a platform placing it there
    assert not any(MONITORING_REFUSED in p for p in Prerequisites().problems(w.ctx))

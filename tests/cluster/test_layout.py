"""Where the head listens (cluster/layout.py): ports chosen once and recorded in the store,
Ray's defaults where every node has a network of its own, and the ports live nodes already
hold kept apart on a shared host."""
from __future__ import annotations

import json
import socket
from dataclasses import asdict, replace

import pytest

from cluster.config import parse_config
from cluster.layout import (
    LAYOUT_KEY,
    PRIVATE_PORTS,
    RAY_DEFAULTS,
    WORKER_PORTS_PER_NODE,
    Layout,
    PortLayout,
    ray_args,
)
from cluster.platforms.records import RUNNING, STARTING, STOPPED, App, AppSpec
from store import Store

LAYOUT = Layout(port=6379, dashboard_port=8265, serve_port=8000, client_port=10001,
                agent_port=52365, worker_ports=(26000, 26099))


def layout_of(tmp_path, shared_host=True, **doc) -> PortLayout:
    config = parse_config({"state_dir": str(tmp_path / "s"), **doc}, environ={})
    return PortLayout(config, Store(config.state_dir), shared_host=shared_host)


def app(name, status=RUNNING, ray=None, env=None) -> App:
    env = {**(env or {}), **({"RAYDEPLOY_RAY_ARGS": json.dumps(ray)} if ray is not None else {})}
    return App(id=name, name=name, status=status,
               spec=AppSpec(name=name, script="cluster/launcher.py", cpu=1, memory=1, env=env))


# -- the layout record -----------------------------------------------------------------------------
def test_the_heads_ports_are_its_own_the_worker_block_and_the_metrics_ports_it_has():
    assert LAYOUT.head_ports == {6379, 8265, 8000, 10001, 52365, *range(26000, 26100)}
    with_metrics = replace(LAYOUT, autoscaler_metrics_port=44217, prometheus_port=9090)
    assert with_metrics.head_ports == LAYOUT.head_ports | {44217, 9090}


def test_the_heads_environment_names_only_the_metrics_ports_it_has():
    assert LAYOUT.head_env() == {}
    layout = replace(LAYOUT, autoscaler_metrics_port=44217, dashboard_metrics_port=44227,
                     prometheus_port=9090)
    assert layout.head_env() == {"AUTOSCALER_METRIC_PORT": "44217",
                                 "DASHBOARD_METRIC_PORT": "44227",
                                 "RAYDEPLOY_PROMETHEUS_PORT": "9090"}


def test_an_apps_ray_options_are_read_from_its_environment():
    assert ray_args(app("a", ray={"port": 6380, "num_cpus": 2})) == {"port": 6380, "num_cpus": 2}
    assert ray_args(app("b")) == {}


# -- choosing and recording ------------------------------------------------------------------------
def test_with_a_network_per_node_rays_defaults_are_used_and_recorded(tmp_path):
    layout = layout_of(tmp_path, shared_host=False)
    assert layout.current() is None
    chosen = layout.ensure(head_alive=False, apps=[])
    assert (chosen.port, chosen.dashboard_port, chosen.serve_port, chosen.client_port,
            chosen.agent_port, chosen.worker_ports) == tuple(RAY_DEFAULTS.values())
    assert chosen.prometheus_port is None
    assert layout.current() == chosen
    assert layout.store.kv.get(LAYOUT_KEY)["port"] == 6379


def test_with_a_network_per_node_configured_ports_win(tmp_path):
    layout = layout_of(tmp_path, shared_host=False, ray={"port": 7000, "serve_port": 8100})
    chosen = layout.ensure(head_alive=False, apps=[])
    assert (chosen.port, chosen.serve_port, chosen.dashboard_port) == (7000, 8100, 8265)


def test_the_recorded_layout_stands_while_the_head_lives(tmp_path):
    layout = layout_of(tmp_path, shared_host=False)
    layout.store.kv.set(LAYOUT_KEY, asdict(replace(LAYOUT, port=7777)))
    assert layout.ensure(head_alive=True, apps=[]).port == 7777
    assert layout.ensure(head_alive=False, apps=[]).port == 6379  # a new head: chosen again
    assert layout.current().port == 6379


def test_on_hosts_of_their_own_the_head_gets_a_prometheus_port_only_where_it_can_run_beside(
        tmp_path):
    """Where the platform runs Prometheus on the head's host, the head is told its port (the
    configured one, else 9090) so the dashboard's metrics pages reach it; elsewhere no port."""
    config = parse_config({"state_dir": str(tmp_path / "s"), "monitoring": {"port": 9191}},
                          environ={})
    beside = PortLayout(config, Store(config.state_dir), shared_host=False,
                        prometheus_beside_head=True).ensure(head_alive=False, apps=[])
    assert beside.prometheus_port == 9191 and beside.head_env()["RAYDEPLOY_PROMETHEUS_PORT"] == "9191"
    apart = layout_of(tmp_path / "apart", shared_host=False).ensure(head_alive=False, apps=[])
    assert apart.prometheus_port is None and "RAYDEPLOY_PROMETHEUS_PORT" not in apart.head_env()


def test_a_recorded_layout_reads_back_as_it_was_written(tmp_path):
    layout = layout_of(tmp_path, shared_host=False)
    chosen = layout.ensure(head_alive=False, apps=[])
    again = PortLayout(layout.config, Store(layout.config.state_dir), shared_host=False)
    assert again.current() == chosen and isinstance(again.current().worker_ports, tuple)


def test_forgetting_the_layout_removes_the_record(tmp_path):
    layout = layout_of(tmp_path, shared_host=False)
    layout.ensure(head_alive=False, apps=[])
    layout.forget()
    assert layout.current() is None


def test_on_a_shared_host_no_port_a_live_node_holds_is_chosen(tmp_path):
    layout = layout_of(tmp_path)
    head = app("rd-head", ray={"port": 6379, "dashboard_port": 8265, "min_worker_port": 26000,
                               "max_worker_port": 26099},
               env={"RAYDEPLOY_PROMETHEUS_PORT": "9090"})
    chosen = layout.ensure(head_alive=False, apps=[head])
    assert chosen.head_ports.isdisjoint({6379, 8265, 9090, *range(26000, 26100)})
    assert chosen.worker_ports[1] - chosen.worker_ports[0] + 1 == WORKER_PORTS_PER_NODE
    ports = [chosen.port, chosen.dashboard_port, chosen.serve_port, chosen.client_port,
             chosen.agent_port, chosen.autoscaler_metrics_port, chosen.dashboard_metrics_port,
             chosen.prometheus_port]
    assert len(set(ports)) == len(ports) and not set(ports) & set(range(*chosen.worker_ports))


def test_on_a_shared_host_configured_ports_are_taken_as_they_are(tmp_path):
    layout = layout_of(tmp_path, ray={"port": 7001, "client_port": 7002},
                       monitoring={"port": 7003})
    chosen = layout.ensure(head_alive=False, apps=[])
    assert (chosen.port, chosen.client_port, chosen.prometheus_port) == (7001, 7002, 7003)


def test_each_state_dir_starts_looking_at_its_own_offset(tmp_path):
    def offset(state_dir):
        return PortLayout(parse_config({"state_dir": str(state_dir)}, environ={}), None).offset
    offsets = {offset(tmp_path / str(n)) for n in range(20)}
    assert len(offsets) > 1 and all(o % 100 == 0 and 0 <= o < 5000 for o in offsets)
    assert offset(tmp_path / "3") == offset(tmp_path / "3")


# -- the ports live nodes hold ---------------------------------------------------------------------
def test_the_ports_in_use_are_those_of_live_apps_only():
    live = app("w1", ray={"port": 6379, "node_manager_port": 20001, "num_cpus": 2,
                          "min_worker_port": 26100, "max_worker_port": 26102},
               env={"AUTOSCALER_METRIC_PORT": "44217", "OTHER_PORT": "1234"})
    starting = app("w2", status=STARTING, ray={"dashboard_agent_listen_port": 20002})
    stopped = app("w3", status=STOPPED, ray={"port": 6390})
    assert PortLayout.ports_in_use([live, starting, stopped]) == {
        6379, 20001, 26100, 26101, 26102, 44217, 20002}


def test_a_worker_gets_its_own_block_agent_and_private_ports_apart_from_those_taken(tmp_path):
    layout = layout_of(tmp_path)
    taken = {26000 + n for n in range(3000)}  # whatever the offset, the first blocks are held
    before = set(taken)
    ports = layout.worker_node_ports(taken)
    assert set(ports) == {"dashboard_agent_listen_port", "min_worker_port", "max_worker_port",
                          *PRIVATE_PORTS}
    assert ports["max_worker_port"] - ports["min_worker_port"] + 1 == WORKER_PORTS_PER_NODE
    mine = {v for k, v in ports.items() if "worker_port" not in k} | set(
        range(ports["min_worker_port"], ports["max_worker_port"] + 1))
    assert mine.isdisjoint(before) and mine <= taken  # and now held, for the next node


# -- configured ports something else holds ---------------------------------------------------------
@pytest.fixture
def held_port():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_configured_port_something_holds_is_named(tmp_path, held_port):
    layout = layout_of(tmp_path, ray={"dashboard_port": held_port})
    assert layout.busy_configured_ports() == [f"ray.dashboard_port={held_port}"]


def test_with_a_network_per_node_no_local_port_is_in_the_way(tmp_path, held_port):
    layout = layout_of(tmp_path, shared_host=False, ray={"dashboard_port": held_port})
    assert layout.busy_configured_ports() == []

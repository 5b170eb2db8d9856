"""host_cleanup: Ray this tool did not start is stopped only as the plan shows it (host,
session, each pid with its start time), always behind a destructive gate, and only what
is still the process seen; a platform without hosts of its own refuses it."""
from __future__ import annotations

import pytest

from checkpoints.host_cleanup import HostCleanup
from checkpoints.plan import Kind
from cluster.platforms.records import ForeignRay
from core.errors import Invalid
from tests.fakes import world


class Hosts:
    """What runs on the hosts (host -> {pid: (start, command, session)}); stop_foreign stops
    a pid only while its start time is the one given."""

    def __init__(self, running: dict):
        self.running = running
        self.stopped: list = []

    def foreign_ray(self, host=None):
        found = []
        for name, procs in sorted(self.running.items()):
            if host in (None, name):
                for session in sorted({s for _, _, s in procs.values()}):
                    found.append(ForeignRay(name, session, tuple(sorted(
                        (pid, start, command) for pid, (start, command, s) in procs.items()
                        if s == session))))
        return found

    def stop_foreign(self, found, grace_seconds=5.0):
        procs = self.running[found.host]
        gone = [pid for pid, start, _ in found.processes
                if pid in procs and procs[pid][0] == start]
        for pid in gone:
            del procs[pid]
        self.stopped += gone
        return gone


@pytest.fixture
def w(tmp_path):
    w = world(tmp_path)
    hosts = Hosts({"w1": {41: ("100", "raylet --x", 40), 42: ("100", "gcs_server", 40)},
                   "w2": {51: ("200", "ray::IDLE", 50)}})
    w.platform.has_own_hosts = True
    w.platform.foreign_ray = hosts.foreign_ray
    w.platform.stop_foreign = hosts.stop_foreign
    return w, hosts


def test_the_plan_shows_each_foreign_session_and_the_gate_is_always_destructive(w):
    world_, hosts = w
    op = HostCleanup(host=None)
    plan = op.plan(world_.ctx)
    assert [(a.kind, a.name, [p[0] for p in a.details["processes"]]) for a in plan.actions] == [
        (Kind.DELETE, "w1/40", [41, 42]), (Kind.DELETE, "w2/50", [51])]
    config = world_.ctx.config
    gate = op.gate(plan, config)
    assert gate.required and gate.destructive
    assert "w1: 2 process(es) of session 40" in gate.reasons[0]


def test_only_the_processes_shown_and_still_the_ones_seen_are_stopped(w):
    world_, hosts = w
    op = HostCleanup(host="w1")
    plan = op.plan(world_.ctx)
    hosts.running["w1"][42] = ("999", "gcs_server", 40)  # pid 42 is another process now
    hosts.running["w1"][43] = ("100", "raylet", 40)  # started after the plan was shown
    op.apply(world_.ctx, plan)
    assert hosts.stopped == [41]
    assert op.result == {"stopped": [{"host": "w1", "pid": 41}]}
    assert hosts.running["w2"] == {51: ("200", "ray::IDLE", 50)}  # another host: untouched
    assert op.verify(world_.ctx) == []  # what the plan showed is gone; 42 and 43 are not its


def test_nothing_found_is_an_empty_plan_with_no_gate(w):
    world_, hosts = w
    hosts.running.clear()
    plan = HostCleanup(host=None).plan(world_.ctx)
    assert plan.empty and not HostCleanup().gate(plan, world_.ctx.config).required
    assert plan.notes == ("no Ray that this tool did not start on every host",)


def test_a_platform_whose_nodes_run_on_nothing_elses_hosts_refuses_it(tmp_path):
    with pytest.raises(Invalid, match="no Ray of somebody else's to stop"):
        HostCleanup(host=None).precheck(world(tmp_path).ctx)

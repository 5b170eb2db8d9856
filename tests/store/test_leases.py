"""The cluster lease: one holder at a time; its holder renews and releases it; a dead holder's
lease is taken over (on this machine at once, elsewhere at expiry). Holders here are names in
this one process, whose pid is alive; a dead holder is a pid no process can have."""
import os
import socket
from pathlib import Path

import pytest

from store import LeaseHeld, Store
from store.leases import pid_alive
from tests.fakes import FakeClock

NO_SUCH_PID = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are below it


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def leases(tmp_path, clock):
    return Store(tmp_path / "state", clock=clock).leases


def holder_gone(leases, pid=NO_SUCH_PID, host=None):
    leases.db.connection().execute("UPDATE leases SET pid=?, host=COALESCE(?, host)", (pid, host))


def test_a_free_lease_is_taken_and_says_who_holds_it(leases, clock):
    assert leases.acquire_lease("cli-1", "run-1", ttl=30) is None
    lease = leases.current_lease()
    assert (lease.holder, lease.run_id, lease.pid, lease.host) == \
        ("cli-1", "run-1", os.getpid(), socket.gethostname())
    assert (lease.acquired_at, lease.expires_at) == (clock.now, clock.now + 30)


def test_a_live_holders_lease_is_refused_to_another_and_kept(leases):
    leases.acquire_lease("cli-1", "run-1")
    with pytest.raises(LeaseHeld) as refused:
        leases.acquire_lease("api", "run-2")
    assert refused.value.lease.holder == "cli-1"
    assert "another run (run-1) holds the cluster lease" in str(refused.value)
    assert f"pid {os.getpid()}" in str(refused.value)
    assert leases.current_lease().run_id == "run-1"


def test_its_holder_takes_it_again_for_longer(leases, clock):
    leases.acquire_lease("cli-1", "run-1", ttl=30)
    clock.advance(20)
    assert leases.acquire_lease("cli-1", "run-2", ttl=30) is None
    lease = leases.current_lease()
    assert (lease.run_id, lease.expires_at) == ("run-2", clock.now + 30)


def test_a_lease_whose_holder_died_on_this_machine_is_taken_over_at_once(leases):
    leases.acquire_lease("cli-1", "run-1", ttl=3600)
    holder_gone(leases)
    assert leases.current_lease() is None
    previous = leases.acquire_lease("api", "run-2")
    assert (previous.holder, previous.run_id) == ("cli-1", "run-1")
    assert leases.current_lease().holder == "api"


def test_a_lease_held_from_another_machine_is_waited_for_until_it_expires(leases, clock):
    leases.acquire_lease("pod-1", "run-1", ttl=30)
    holder_gone(leases, host="another-host")  # its pid says nothing here
    assert leases.current_lease().holder == "pod-1"
    with pytest.raises(LeaseHeld):
        leases.acquire_lease("api", "run-2")
    clock.advance(31)
    assert leases.current_lease() is None
    assert leases.acquire_lease("api", "run-2").holder == "pod-1"


def test_only_its_holder_renews_it_and_may_name_the_run(leases, clock):
    leases.acquire_lease("cli-1", None, ttl=30)
    clock.advance(25)
    assert leases.renew_lease("someone-else") is False
    assert leases.renew_lease("cli-1", ttl=30, run_id="run-7") is True
    lease = leases.current_lease()
    assert (lease.run_id, lease.expires_at) == ("run-7", clock.now + 30)
    assert leases.renew_lease("cli-1", ttl=60) is True
    assert leases.current_lease().run_id == "run-7"  # kept when not named


def test_only_its_holder_releases_it(leases):
    leases.acquire_lease("cli-1", "run-1")
    leases.release_lease("someone-else")
    assert leases.current_lease().holder == "cli-1"
    leases.release_lease("cli-1")
    assert leases.current_lease() is None
    assert leases.acquire_lease("api", "run-2") is None


def test_leases_of_different_names_are_independent_and_can_all_be_forgotten(leases):
    leases.acquire_lease("cli-1", "run-1")
    leases.acquire_lease("api", None, name="notifications")
    assert leases.current_lease("notifications").holder == "api"
    leases.clear_leases()
    assert leases.current_lease() is None and leases.current_lease("notifications") is None


def test_a_pid_is_alive_only_while_a_process_has_it():
    assert pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0)
    assert not pid_alive(NO_SUCH_PID)

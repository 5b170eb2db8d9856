"""The ssh platform's own decisions, with a runner that keeps hosts in memory (the lab tests,
tests/integration/test_ssh_platform.py, prove the same against real sshds): where a node
goes, what a listing says when a host is gone, how a job run on several hosts ends, what
check() names, and which project file paths are refused."""
from __future__ import annotations

import itertools

import pytest

from cluster.config import parse_config
from cluster.platforms.base import PlatformError
from cluster.platforms.records import FAILED, RUNNING, AppSpec, JobSpec, node_tags
from cluster.platforms.ssh.platform import SEEN_FOR, SSHPlatform
from cluster.platforms.ssh.runner import Process, SSHError
from store import Store
from tests.fakes import FakeClock

HOSTS = [{"name": "head", "address": "10.0.0.1", "role": "head"},
         {"name": "w1", "address": "10.0.0.2"}, {"name": "w2", "address": "10.0.0.3"}]


class Hosts:
    """A runner over hosts kept in memory: their processes, files and what is on them."""

    def __init__(self):
        self.pids = itertools.count(100)
        self.running: dict[str, dict[int, dict]] = {}  # host -> pid -> {argv, env, start}
        self.down: set[str] = set()
        self.ended: dict[tuple, str] = {}  # (host, run dir) -> "succeeded 0" ...
        self.foreign: dict[str, list[Process]] = {}
        self.taken: dict[str, list[int]] = {}
        self.files: dict[str, str] = {}

    def _up(self, host):
        if host.name in self.down:
            raise SSHError(f"{host.name} ({host.user}@{host.address}:22) cannot be reached: "
                           f"No route to host")

    def run(self, host, argv, timeout=120, input=None):
        self._up(host)
        import subprocess
        if argv[:2] == ["sh", "-c"] and "HOME" in argv[2]:
            return subprocess.CompletedProcess(argv, 0, "/home/ray", "")
        if argv[0] == "cat":
            return subprocess.CompletedProcess(argv, 0, self.files.get(argv[1], ""), "")
        if argv[:2] == ["sh", "-c"] and "printf %s \"$2\"" in argv[2]:
            self.files[argv[4]] = argv[5]
        if argv[:2] == ["sh", "-c"] and "exit 3" in argv[2]:
            found = self.files.get(argv[4])
            return subprocess.CompletedProcess(argv, 0 if found is not None else 3, found or "", "")
        if argv[:2] == ["sh", "-c"] and "cat >" in argv[2]:
            self.files[argv[4]] = input
        return subprocess.CompletedProcess(argv, 0, "", "")

    def put(self, host, archive, directory, timeout=300):
        self._up(host)

    def start(self, host, argv, log, env=None, cwd=None):
        self._up(host)
        pid = next(self.pids)
        self.running.setdefault(host.name, {})[pid] = {"argv": argv, "env": env, "start": "1"}
        return Process(host.name, pid, "1")

    def alive_all(self, host, started):
        self._up(host)
        return [p.pid in self.running.get(host.name, {}) for p in started]

    def stop(self, host, process, grace_seconds=5):
        self._up(host)
        return self.running.get(host.name, {}).pop(process.pid, None) is not None

    def find(self, host, key, value):
        return None

    def results(self, host, runs):
        self._up(host)
        return [{"result": self.ended.get((host.name, d)),
                 "alive": p.pid in self.running.get(host.name, {})} for d, p in runs]

    def survey(self, host, ports=(), started=()):
        self._up(host)
        ours = [Process(host.name, pid, p["start"], " ".join(p["argv"]), pid)
                for pid, p in self.running.get(host.name, {}).items()]
        return {"ray": ours + self.foreign.get(host.name, []),
                "taken": [p for p in self.taken.get(host.name, []) if p in ports],
                "alive": [p.pid in self.running.get(host.name, {}) for p in started]}

    def close(self):
        pass


@pytest.fixture
def world(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "cluster").mkdir()
    (tmp_path / "project" / "cluster" / "launcher.py").write_text("")
    config = parse_config({"platform": "ssh", "cluster_name": "onprem",
                           "project_dir": str(tmp_path / "project"),
                           "state_dir": str(tmp_path / "state"), "workers": {"count": 2},
                           "ssh": {"hosts": HOSTS, "known_hosts": str(tmp_path / "kh")}},
                          environ={})
    hosts = Hosts()
    return SSHPlatform(config, Store(config.state_dir), runner=hosts, clock=FakeClock()), hosts


def node(name: str, role: str) -> AppSpec:
    index = int(name.rsplit("-", 1)[1]) if role == "worker" else None
    return AppSpec(name=name, script="cluster/launcher.py", cpu=1, memory=1,
                   tags=node_tags("onprem", role, index),
                   env={"RAYDEPLOY_ROLE": role, "RAYDEPLOY_RAY_ARGS": "{}"})


def test_the_hosts_new_workers_would_take_are_the_free_ones_in_order(world):
    """What a plan shows: where new workers go, counting hosts the plan frees first."""
    platform, _ = world
    assert platform.hosts_for_workers(2) == ["w1", "w2"]
    first = platform.create_app(node("onprem-worker-1", "worker"))
    assert platform.hosts_for_workers(2) == ["w2"]  # one free: the plan says so
    assert platform.hosts_for_workers(2, leaving=[first]) == ["w1", "w2"]
    second = platform.create_apps([node("onprem-worker-2", "worker")])[0]
    assert platform.host_of(second) == "w2" and platform.hosts_for_workers(1) == []


def test_the_head_goes_to_the_head_host_and_each_worker_to_a_worker_host_of_its_own(world):
    platform, hosts = world
    head = platform.create_app(node("onprem-head", "head"))
    workers = [platform.create_app(node(f"onprem-worker-{i}", "worker")) for i in (1, 2)]
    assert head.ip == "10.0.0.1" and sorted(w.ip for w in workers) == ["10.0.0.2", "10.0.0.3"]
    started = hosts.running["w1"][next(iter(hosts.running["w1"]))]
    assert started["env"]["RAYDEPLOY_NODE_ADDRESS"] == "10.0.0.2"
    assert started["env"]["RAYDEPLOY_VENV"] == "/home/ray/.raydeploy/onprem/project/.venv"
    with pytest.raises(PlatformError, match="no worker host is free for onprem-worker-3"):
        platform.create_app(node("onprem-worker-3", "worker"))
    again = platform.create_app(node("onprem-worker-1", "worker"))  # a retry: the same app
    assert again.id in {w.id for w in workers}
    assert sum(len(p) for p in hosts.running.values()) == 3


def test_a_freed_worker_host_takes_the_next_worker(world):
    platform, hosts = world
    platform.create_app(node("onprem-worker-1", "worker"))
    second = platform.create_app(node("onprem-worker-2", "worker"))
    platform.delete_app(second.id)
    third = platform.create_app(node("onprem-worker-3", "worker"))
    assert third.ip == second.ip


def test_a_node_whose_process_ended_is_failed_and_a_host_that_does_not_answer_too(world):
    platform, hosts = world
    head = platform.create_app(node("onprem-head", "head"))
    worker = platform.create_app(node("onprem-worker-1", "worker"))
    assert {a.status for a in platform.list_apps()} == {RUNNING}
    hosts.running["head"].clear()  # the head's process ended
    hosts.down.add("w1")  # w1 does not answer
    platform.clock.advance(SEEN_FOR)  # the hosts are asked again
    statuses = {a.id: a.status for a in platform.list_apps()}
    assert statuses == {head.id: FAILED, worker.id: FAILED}
    hosts.down.clear()  # w1 answers again: its node still runs (nothing was recorded)
    statuses = {a.id: a.status for a in platform.list_apps()}
    assert statuses == {head.id: FAILED, worker.id: RUNNING}


def test_a_node_seen_running_is_not_asked_of_its_host_again_for_a_while(world):
    """Waits list the nodes every 0.1 s: each host is asked at most once in SEEN_FOR."""
    platform, hosts = world
    worker = platform.create_app(node("onprem-worker-1", "worker"))
    asked = []
    alive_all = hosts.alive_all
    hosts.alive_all = lambda host, started: asked.append(host.name) or alive_all(host, started)
    assert platform.get_app(worker.id).status == RUNNING and asked == []  # seen as it started
    hosts.running["w1"].clear()  # it ends
    platform.clock.advance(SEEN_FOR / 2)
    assert platform.get_app(worker.id).status == RUNNING and asked == []  # not asked yet
    platform.clock.advance(SEEN_FOR / 2)
    assert platform.get_app(worker.id).status == FAILED and asked == ["w1"]


def test_a_node_that_cannot_be_stopped_keeps_its_record(world):
    platform, hosts = world
    worker = platform.create_app(node("onprem-worker-1", "worker"))
    hosts.down.add("w1")
    with pytest.raises(PlatformError, match="could not stop onprem-worker-1"):
        platform.delete_app(worker.id)
    assert [a.id for a in platform.list_apps()] == [worker.id]


def run_on_every_host(platform, hosts):
    job = platform.create_job(JobSpec(name="setup_environment", script="jobs/setup.py"))
    run = platform.start_job_run(job.id, "key")
    directory = f"/home/ray/.raydeploy/onprem/runs/{run.id}"
    assert run.status == "running"
    assert {(name, e["argv"][2]) for name, host in hosts.running.items() for e in host.values()} \
        == {(h, directory) for h in ("head", "w1", "w2")}
    return job, run, directory


def end(hosts, host: str, directory: str, result: str | None) -> None:
    hosts.running[host].clear()
    if result:
        hosts.ended[(host, directory)] = result


def test_a_job_run_succeeds_when_it_succeeded_on_every_host(world):
    platform, hosts = world
    job, run, directory = run_on_every_host(platform, hosts)
    for host in ("head", "w1"):
        end(hosts, host, directory, "succeeded 0")
    assert platform.get_job_run(job.id, run.id).status == "running"  # w2 still runs
    end(hosts, "w2", directory, "succeeded 0")
    assert platform.get_job_run(job.id, run.id).status == "succeeded"


def test_a_job_run_fails_when_a_host_failed_or_its_part_died_without_a_result(world):
    platform, hosts = world
    job, run, directory = run_on_every_host(platform, hosts)
    end(hosts, "head", directory, "succeeded 0")
    end(hosts, "w1", directory, "failed 2")
    end(hosts, "w2", directory, None)  # died, no result written
    ended = platform.get_job_run(job.id, run.id)
    assert (ended.status, ended.exit_code) == ("failed", 2)
    job, run, directory = run_on_every_host(platform, hosts)
    for host in ("head", "w1"):
        end(hosts, host, directory, "succeeded 0")
    end(hosts, "w2", directory, None)
    assert platform.get_job_run(job.id, run.id).status == "failed"


def test_check_names_each_host_and_what_is_wrong_there(world):
    platform, hosts = world
    hosts.down.add("w2")
    hosts.taken["head"] = [6379]
    hosts.foreign["w1"] = [Process("w1", 4242, "9", "raylet --x", session=4200),
                           Process("w1", 4243, "9", "gcs_server", session=4200)]
    problems = platform.check()
    assert problems == [
        "head: port(s) 6379 taken (the head listens there): free them, or set other ports in "
        "ray.*port",
        "w1: a Ray this tool did not start runs there (pid 4242: raylet --x; 2 Ray process(es) "
        "in its session 4200): stop it (the host_cleanup operation, gated), or take the host "
        "out of the inventory",
        "w2 (root@10.0.0.3:22) cannot be reached: No route to host"]


def test_check_does_not_count_the_clusters_own_nodes(world):
    platform, hosts = world
    worker = platform.create_app(node("onprem-worker-1", "worker"))
    pid = next(iter(hosts.running["w1"]))
    hosts.foreign["w1"] = [Process("w1", pid + 7, "9", "raylet", session=pid)]
    assert platform.check() == []
    platform.delete_app(worker.id)
    assert len(platform.check()) == 1


def test_project_files_are_the_head_hosts_and_paths_may_not_leave_them(world):
    platform, hosts = world
    platform.write_file("nodes/a.json", "{}")
    assert hosts.files == {"/home/ray/.raydeploy/onprem/files/nodes/a.json": "{}"}
    assert platform.read_file("nodes/a.json") == "{}"
    assert platform.read_file("nodes/b.json") is None
    for bad in ("../../.ssh/authorized_keys", "/etc/passwd"):
        with pytest.raises(PlatformError, match="leaves the project"):
            platform.write_file(bad, "x")


def test_more_workers_than_worker_hosts_is_a_problem_before_anything_starts(tmp_path):
    config = parse_config({"platform": "ssh", "cluster_name": "onprem",
                           "state_dir": str(tmp_path / "state"), "workers": {"count": 3},
                           "ssh": {"hosts": HOSTS, "known_hosts": str(tmp_path / "kh")}},
                          environ={})
    platform = SSHPlatform(config, Store(config.state_dir), runner=Hosts())
    assert platform.check() == ["workers.count is 3 but the inventory has 2 worker host(s): "
                                "one node per host"]


def test_workers_made_at_once_take_the_worker_hosts_in_order(world):
    platform, hosts = world
    made = platform.create_apps([node(f"onprem-worker-{i}", "worker") for i in (1, 2)])
    assert [(a.name, a.ip) for a in made] == [("onprem-worker-1", "10.0.0.2"),
                                              ("onprem-worker-2", "10.0.0.3")]


def test_a_worker_recorded_before_specs_had_tags_still_holds_its_host(world):
    """Upgrading keeps placement and identity: an older record says the role only in the
    launcher's env, and its name says the rest."""
    platform, _ = world
    old = {"id": "app-old", "name": "onprem-worker-1", "status": "stopped", "host": "w1",
           "pid": None, "pid_start": None, "created_at": 1.0,
           "spec": {"name": "onprem-worker-1", "script": "cluster/launcher.py", "cpu": 1,
                    "memory": 1, "gpus": 0, "env": {"RAYDEPLOY_ROLE": "worker"},
                    "description": "", "public": False, "ip": "10.0.0.2"}}
    platform.store.platform_records.put_app(old)
    assert platform.hosts_for_workers(2) == ["w2"]
    assert platform.get_app("app-old").spec.tags == node_tags("onprem", "worker", 1)


def test_a_node_the_survey_saw_running_is_not_asked_of_its_host_again(world):
    """A plan surveys every host (prerequisites), then lists the nodes: one round trip to
    each host, not two. A node the survey did not see (its process ended) is asked."""
    platform, hosts = world
    head = platform.create_app(node("onprem-head", "head"))
    worker = platform.create_app(node("onprem-worker-1", "worker"))
    platform.clock.advance(SEEN_FOR)  # what the starts saw is old
    asked = []
    alive_all = hosts.alive_all
    hosts.alive_all = lambda host, started: asked.append(host.name) or alive_all(host, started)
    hosts.running["w1"].clear()  # the worker's process ended
    assert platform.check() == []
    assert {a.id: a.status for a in platform.list_apps()} == {head.id: RUNNING,
                                                              worker.id: FAILED}
    assert asked == ["w1"]  # the head was seen by the survey

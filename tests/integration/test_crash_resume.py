"""Crash consistency: the deploy process dies (``os._exit(137)``, as kill -9) at every phase
of every checkpoint, and between the platform making the head and recording it, then
``--resume`` runs; it must always converge.

After each resume: the run ended ``succeeded`` (so validation passed on the live cluster),
exactly the configured nodes exist as platform apps and as ALIVE Ray nodes, every Ray process
belongs to one of those nodes (no orphan process group), and no job ran twice for one spec.

One cluster per platform is shared by the whole matrix: before each crash a change to the
config (or the state) gives the crashing checkpoint real work to do, so the crash lands in
the middle of it, and the next case starts from whatever the last resume converged to.
The pairs a run cannot reach (a checkpoint with nothing to apply has no gate and no apply)
are listed in UNREACHABLE with the reason. Marked ``crash``: ``make test`` runs it,
``make test-fast`` does not. See core/crashpoints.py for the hook.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from cluster.prometheus import prometheus_binary
from core.crashpoints import EXIT_CODE, PHASES
from core.facts import CHECKPOINT_ORDER
from tests.conftest import ROOT, base_config, clean_env, cli, our_processes, stop_recorded_apps, write_config

pytestmark = [pytest.mark.integration, pytest.mark.crash]

ORDER = list(CHECKPOINT_ORDER)
MONITORING = prometheus_binary() is not None  # else monitoring stays off: nothing to crash in
UNREACHABLE = {  # (checkpoint, phase) -> why no run can stop there
    **{("prerequisites", p): "its plan is always empty (it only checks): no gate, no apply"
       for p in ("gate", "apply-start", "apply-mid", "verify")},
    ("validation", "apply-mid"): "it writes nothing to the platform or to Ray",
    **({} if MONITORING else {("monitoring", p): "prometheus is not installed: monitoring off"
                              for p in ("gate", "apply-start", "apply-mid", "verify")}),
}
# the ambiguous failure (core/crashpoints.py "unrecorded"): the head made by the platform,
# not yet recorded or answered when the deployer dies; the resume must find it, not make two
AMBIGUOUS = [("head_launch", "unrecorded")]
LOCAL_CASES = [(c, p) for c in ORDER for p in PHASES
               if p != "unrecorded" and (c, p) not in UNREACHABLE] + AMBIGUOUS
CML_CASES = [(c, "apply-mid") for c in ORDER if (c, "apply-mid") not in UNREACHABLE
             and c not in ("prerequisites", "monitoring")] + AMBIGUOUS  # monitoring: locally


def crash_env(checkpoint: str, phase: str, **extra) -> dict:
    return clean_env(RAYDEPLOY_TEST_HOOKS="1", RAYDEPLOY_CRASH_AT=f"{checkpoint}:{phase}", **extra)


class Matrix:
    """One cluster and its config; ``change_for`` gives a checkpoint work to do."""

    def __init__(self, root: Path, config: dict, env: dict):
        self.root, self.config, self.env = root, config, env
        self.path = root / "cluster.yaml"
        self.state_dir = Path(config["state_dir"])
        self.case = self.jobs_case = 0
        self.jobs_path = root / "jobs.yaml"
        self.write()

    def write(self) -> None:
        jobs = yaml.safe_load((ROOT / "jobs_config.yaml").read_text())
        for job in jobs["jobs"]:
            job["environment"] = {"CRASH_CASE": str(self.jobs_case)}
        self.jobs_path.write_text(yaml.safe_dump(jobs))
        self.config["jobs_config"] = str(self.jobs_path)
        write_config(self.path, self.config)

    def change_for(self, checkpoint: str) -> None:
        self.case += 1
        if checkpoint == "project_setup":  # the platform lost the project (local, ssh: its record)
            from store import Store
            if self.config["platform"] == "local":
                from cluster.platforms.local import PROJECT_KEY
                Store(self.state_dir).kv.delete(PROJECT_KEY)
            elif self.config["platform"] == "ssh":
                from cluster.platforms.ssh.platform import PROJECT_KEY
                Store(self.state_dir).kv.delete(PROJECT_KEY)
        elif checkpoint == "job_creation":  # new job environments: each job updated and run
            self.jobs_case = self.case
        elif checkpoint == "head_launch":  # new head resources: the head (and all) restart
            self.config["head"]["memory"] = 3 - self.config["head"]["memory"]
        elif checkpoint == "worker_launch":  # one worker more, or one fewer
            self.config["workers"]["count"] = 3 - self.config["workers"]["count"]
        elif checkpoint == "monitoring":  # a new scrape interval: Prometheus is replaced
            self.config["monitoring"]["scrape_interval_seconds"] = 7 - \
                self.config["monitoring"]["scrape_interval_seconds"]
        elif checkpoint == "serve_deploy":  # the app's args change: Serve redeploys it
            self.config["serve"]["applications"][0].update(
                import_path="examples.apps.hello:build", args={"greeting": f"hi {self.case}"})
        self.write()

    def context(self):
        from checkpoints.factory import make_context
        from cluster.config import load_config
        return make_context(load_config(self.path, environ=self.env))

    def cli(self, *args: str, env: dict):
        return cli(*args, config=self.path, env=env, timeout=600)

    def crash_and_resume(self, checkpoint: str, phase: str) -> str:
        self.change_for(checkpoint)
        crashed = self.cli("--deploy", "--auto-approve",
                           env=crash_env(checkpoint, phase, **self.extra_env()))
        assert crashed.returncode == EXIT_CODE, (
            f"no crash at {checkpoint}:{phase}\n{crashed.stdout}{crashed.stderr}")
        resumed = self.cli("--resume", "--auto-approve", env=self.env)
        output = resumed.stdout + resumed.stderr
        assert resumed.returncode == 0, f"resume after {checkpoint}:{phase} failed\n{output}"
        assert f"at {checkpoint}:" in output and "found:" in output, output
        print(crashed.stdout[-1500:], "\n--- resumed ---\n", output)  # noqa: T201 - shown with -s or on failure
        return output

    def extra_env(self) -> dict:
        return {k: v for k, v in self.env.items() if k.startswith("CML_")}

    def assert_converged(self) -> None:
        from core.facts import RunStatus
        ctx = self.context()
        assert ctx.store.runs.latest_run().status == RunStatus.SUCCEEDED
        inventory = ctx.cluster.inventory
        apps = inventory.apps()
        names = sorted(a.name for a in apps)
        workers = self.config["workers"]["count"]
        assert len(names) == len(set(names)) == 1 + workers, names  # no duplicate, no leftover
        assert inventory.head_app(apps=apps) is not None
        assert len(inventory.worker_apps(apps=apps)) == workers, names
        alive = inventory.alive_ips()
        assert {inventory.node_ip(a) for a in apps} == alive, (names, alive)
        for job in ctx.platform.list_jobs():
            runs = ctx.platform.job_runs(job.id)
            assert all(r.finished for r in runs), f"job {job.name}: a run still going"
            keys = [r.spec_hash for r in runs if r.status == "succeeded"]
            assert len(keys) == len(set(keys)), f"job {job.name} ran twice for one spec"
        sessions = wait_for_sessions(self.state_dir, 1 + workers)
        assert len(sessions) == 1 + workers, f"Ray processes in {len(sessions)} sessions: {sessions}"


def ray_sessions(state_dir: Path) -> dict[int, list[str]]:
    """Live processes of this cluster by session: each node is one session."""
    sessions: dict[int, list[str]] = {}
    for pid, cmdline in our_processes(state_dir):
        try:
            sessions.setdefault(os.getsid(pid), []).append(cmdline[:120])
        except ProcessLookupError:  # it ended meanwhile
            continue
    return sessions


def wait_for_sessions(state_dir: Path, want: int, timeout: float = 20) -> dict:
    """Processes of a node just stopped take a moment to go: wait for the count to settle."""
    deadline = time.monotonic() + timeout
    while True:
        sessions = ray_sessions(state_dir)
        if len(sessions) == want or time.monotonic() > deadline:
            return sessions
        time.sleep(0.3)


def report(text: str) -> None:
    from tests.conftest import TIMINGS
    TIMINGS.append(text)


@pytest.fixture(scope="module")
def local_matrix(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-local")
    approvals = {"required": ORDER}  # every checkpoint with work has a gate to crash at
    config = base_config(root / "state", name="rdcrash", workers=1, approvals=approvals,
                         serve={"management_api": {"enabled": False}},
                         monitoring={"enabled": MONITORING, "scrape_interval_seconds": 3})
    matrix = Matrix(root, config, clean_env())
    started = time.monotonic()
    yield matrix
    report(f"crash matrix (local, {len(LOCAL_CASES)} cases): "
                    f"{time.monotonic() - started:.0f}s")
    cli("--teardown", "--auto-approve", config=matrix.path, timeout=300)
    stop_recorded_apps(matrix.state_dir)


@pytest.mark.parametrize("checkpoint,phase", LOCAL_CASES, ids=[f"{c}:{p}" for c, p in LOCAL_CASES])
def test_resume_converges_after_a_crash_on_the_local_platform(local_matrix, checkpoint, phase):
    local_matrix.crash_and_resume(checkpoint, phase)
    local_matrix.assert_converged()


@pytest.fixture(scope="module")
def cml_matrix(tmp_path_factory):
    from tests.cml_simulator.helpers import KEY, Simulator, runtime_of
    root = tmp_path_factory.mktemp("crash-cml")
    sim = Simulator(root / "sim")
    config = {
        "cluster_name": "raycrash", "platform": "cml", "state_dir": str(root / "state"),
        "project_dir": str(ROOT), "jobs_config": str(ROOT / "jobs_config.yaml"),
        "cml": {"host": sim.url, "project_name": "ray-crash", "git_url": str(ROOT),
                "shared_host_network": True, "runtime_identifier": runtime_of(sim)},
        "approvals": {"required": ORDER},
        "head": {"cpu": 1, "memory": 1}, "workers": {"count": 1, "cpu": 1, "memory": 1},
        "serve": {"applications": [{"name": "hello", "import_path": "examples.apps.hello:app",
                                    "route_prefix": "/hello"}],
                  "management_api": {"enabled": False}}}
    matrix = Matrix(root, config, clean_env(CML_API_KEY=KEY))
    started = time.monotonic()
    try:
        yield matrix
    finally:
        report(f"crash matrix (CML simulator, {len(CML_CASES)} cases): "
                        f"{time.monotonic() - started:.0f}s")
        cli("--teardown", "--auto-approve", config=matrix.path, env=matrix.env, timeout=300)
        sim.stop()


@pytest.mark.parametrize("checkpoint,phase", CML_CASES, ids=[f"{c}:{p}" for c, p in CML_CASES])
def test_resume_converges_after_a_crash_on_cml(cml_matrix, checkpoint, phase):
    cml_matrix.crash_and_resume(checkpoint, phase)
    cml_matrix.assert_converged()


SSH_CASES = CML_CASES  # apply-mid of every checkpoint with work (monitoring: locally covered)


class SSHMatrix(Matrix):
    """The deployer runs in the lab's ops host; the nodes on hosts with their own sshd."""

    def __init__(self, root: Path, ssh, hosts: list[str]):
        from tests.ssh_lab import ENV
        self.ssh, self.hosts = ssh, hosts
        config = ssh.config("raycrash", hosts, workers=1, approvals={"required": ORDER})
        super().__init__(root, {**config, "state_dir": str(root / "state")}, dict(ENV))

    def cli(self, *args: str, env: dict):
        # ops has an environment of its own: of the test's, the crash hook's variables only
        hooks = {k: v for k, v in env.items() if k.startswith("RAYDEPLOY_")}
        return self.ssh.cli(*args, config=self.path, env=hooks)

    def assert_converged(self) -> None:
        facts = self.ssh.facts(self.path)
        assert facts["run"] == "succeeded", facts
        workers = self.config["workers"]["count"]
        names = sorted(facts["apps"])
        assert names == ["raycrash-head"] + [f"raycrash-worker-{i}" for i in
                                             sorted(int(n.rsplit("-", 1)[1]) for n in names
                                                    if "worker" in n)], names
        assert len(names) == 1 + workers, names  # no duplicate, no leftover
        assert facts["alive"] == sorted(a["ip"] for a in facts["apps"].values()), facts
        for name, runs in facts["jobs"].items():
            assert all(finished for _, _, finished in runs), f"job {name}: a run still going"
            keys = [key for key, status, _ in runs if status == "succeeded"]
            assert len(keys) == len(set(keys)), f"job {name} ran twice for one spec"
        used = {a["host"] for a in facts["apps"].values()}
        for host in self.hosts:  # one session per node's host, nothing on the others
            sessions = wait_for(lambda h=host: {s for _, s, _ in self.ssh.processes(h)},
                                1 if host in used else 0)
            assert len(sessions) == (1 if host in used else 0), (host, self.ssh.processes(host))


def wait_for(sessions_of, want: int, timeout: float = 20) -> set:
    deadline = time.monotonic() + timeout
    while True:
        sessions = sessions_of()
        if len(sessions) == want or time.monotonic() > deadline:
            return sessions
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ssh_matrix(tmp_path_factory, lab_ready):
    from lab import Lab
    from tests.ssh_lab import SSHLab
    root = tmp_path_factory.mktemp("crash-ssh")
    lab = Lab.create(owner_pid=os.getpid())
    started = time.monotonic()
    try:
        ssh = SSHLab(lab, root)
        hosts = ["head", "w1", "w2"]
        for host in hosts:
            ssh.add(host)
        matrix = SSHMatrix(root, ssh, hosts)
        yield matrix
        matrix.cli("--teardown", "--auto-approve", env=matrix.env)
    finally:
        report(f"crash matrix (ssh, {len(SSH_CASES)} cases): {time.monotonic() - started:.0f}s")
        lab.down()


@pytest.mark.lab
@pytest.mark.parametrize("checkpoint,phase", SSH_CASES, ids=[f"{c}:{p}" for c, p in SSH_CASES])
def test_resume_converges_after_a_crash_on_ssh_hosts(ssh_matrix, checkpoint, phase):
    ssh_matrix.crash_and_resume(checkpoint, phase)
    ssh_matrix.assert_converged()

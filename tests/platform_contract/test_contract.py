"""What every platform promises, proven by the same tests on each (marker ``platform_contract``):
the in-memory fake, the local platform (processes of this machine), CML (through the
simulator) and ssh (hosts of the lab). A platform is done when it passes this suite
(docs/architecture.md).

    - creating an app is idempotent by its name (a retry after a lost answer finds it);
    - listing sees what this platform's project holds, and nothing of another's;
    - deleting is final: the app's process ends, and nothing else ends with it;
    - an app's process outlives the command that created it: a later process finds it.

The ssh platform's harness runs on lab hosts with their own sshd (tests/ssh_lab.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cluster import processes
from cluster.config import parse_config
from cluster.platforms.base import LIVE, App, AppSpec
from cluster.platforms.local import LocalPlatform
from core.errors import NotFound
from core.timing import poll_until
from store import Store
from tests.conftest import ROOT
from tests.fakes import FakePlatform

pytestmark = [pytest.mark.integration, pytest.mark.platform_contract]

# an app that says who it is: its pid in contract/<name>, in the project it runs in
APP = textwrap.dedent("""\
    import os, pathlib, time
    here = pathlib.Path("contract")
    here.mkdir(exist_ok=True)
    (here / os.environ["CONTRACT_NAME"]).write_text(str(os.getpid()))
    while True:
        time.sleep(3600)
    """)


def spec(name: str) -> AppSpec:
    return AppSpec(name=name, script="contract_app.py", cpu=1, memory=1,
                   env={"CONTRACT_NAME": name})


class Fake:
    """Nothing runs: the promises about records only."""
    runs_processes = False

    def __init__(self, tmp_path):
        self.platform = FakePlatform()
        self.other = FakePlatform()

    def later(self):  # a later process finds what an earlier one made (records)
        return self.platform

    def stop(self):
        pass


class Local:
    runs_processes = True

    def __init__(self, tmp_path):
        self.project = tmp_path / "project"
        self.project.mkdir()
        (self.project / "contract_app.py").write_text(APP)
        self.state = tmp_path / "state"
        self.platform = LocalPlatform(Store(self.state), self.project, self.state)
        other = tmp_path / "other"
        (other / "project").mkdir(parents=True)
        (other / "project" / "contract_app.py").write_text(APP)
        self.other = LocalPlatform(Store(other / "state"), other / "project", other / "state")

    def later(self):
        return LocalPlatform(Store(self.state), self.project, self.state)

    def pid(self, name: str) -> int:
        path = self.project / "contract" / name
        poll_until(path.exists, 30, f"{name} to say its pid", interval=0.05)
        return int(path.read_text())

    def create_elsewhere(self, name: str) -> str:
        return elsewhere("import sys; from store import Store; "
                         "from cluster.platforms.local import LocalPlatform; "
                         "from tests.platform_contract.test_contract import spec; "
                         "state, project, name = sys.argv[1:4]; "
                         "p = LocalPlatform(Store(state), project, state); "
                         "print(p.create_app(spec(name)).id)",
                         str(self.state), str(self.project), name)

    def stop(self):
        for platform in (self.platform, self.other):
            for app in platform.list_apps():
                platform.delete_app(app.id)


def cml_config(url: str, key: str, runtime: str, project: str):
    return parse_config({"platform": "cml", "cluster_name": "contract",
                         "cml": {"host": url, "api_key": key, "project_name": project,
                                 "shared_host_network": True, "runtime_identifier": runtime}},
                        environ={})


def elsewhere(code: str, *args: str) -> str:
    """What ``code`` prints, run by another process (a CLI run, say), which then exits."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class CML:
    runs_processes = True

    def __init__(self, tmp_path):
        from cluster.platforms.cml.client import CMLClient
        from cluster.platforms.cml.platform import CMLPlatform
        from tests.cml_simulator.helpers import KEY, Simulator, runtime_of, write_script
        self.tmp, self.sim = tmp_path, Simulator(tmp_path / "sim")
        self.key, self.runtime = KEY, runtime_of(self.sim)

        def make(project: str):
            config = cml_config(self.sim.url, KEY, self.runtime, project)
            platform = CMLPlatform(config, CMLClient(self.sim.url, KEY, backoff=0.02))
            made = platform.create_project(project)
            poll_until(lambda: platform.find_project(project).status == "success", 60,
                       "the project")
            write_script(tmp_path / "sim", made.id, "contract_app.py", APP)
            return platform
        self.make = make
        self.platform, self.other = make("contract"), make("elsewhere")

    def later(self):
        return self.make("contract")

    def pid(self, name: str) -> int:
        path = self.tmp / "sim" / "projects" / self.platform.project_id / "contract" / name
        poll_until(path.exists, 30, f"{name} to say its pid", interval=0.05)
        return int(path.read_text())

    def create_elsewhere(self, name: str) -> str:
        return elsewhere("import sys; from cluster.platforms.cml.platform import CMLPlatform; "
                         "from tests.platform_contract.test_contract import cml_config, spec; "
                         "url, key, runtime, name = sys.argv[1:5]; "
                         "config = cml_config(url, key, runtime, 'contract'); "
                         "print(CMLPlatform(config).create_app(spec(name)).id)",
                         self.sim.url, self.key, self.runtime, name)

    def stop(self):
        self.sim.stop()


# run in the lab's ops host: one call of the ssh platform of a config, its answer as JSON
SSH_CALL = """
import dataclasses, json, sys
from cluster.config import load_config
from cluster.platforms import make_platform
from core.errors import NotFound
from store import Store
from tests.platform_contract.test_contract import spec
config = load_config(sys.argv[1])
platform = make_platform(config, Store(config.state_dir))
if platform.find_project(config.cluster_name) is None:
    platform.create_project(config.cluster_name)
method, argument = sys.argv[2], sys.argv[3]
try:
    if method == "create_app":
        answer = platform.create_app(spec(argument))
    elif method == "list_apps":
        answer = platform.list_apps()
    else:
        answer = getattr(platform, method)(argument)
except NotFound as e:
    answer = {"not_found": str(e)}
print(json.dumps(answer, default=dataclasses.asdict))
"""


class SSHPlatformIn:
    """The ssh platform of a config, each call made by a process of the lab's ops host (the
    hosts are reachable from there only): every call is "a later process"."""

    def __init__(self, ssh, config):
        self.ssh, self.config = ssh, config

    def _call(self, method: str, argument: str = ""):
        done = self.ssh.python(SSH_CALL, str(self.config), method, argument)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if isinstance(answer, dict) and "not_found" in answer:
            raise NotFound(answer["not_found"])
        return answer

    @staticmethod
    def _app(raw: dict) -> App:
        return App(**{**raw, "spec": AppSpec(**raw["spec"])})

    def create_app(self, app_spec: AppSpec) -> App:
        return self._app(self._call("create_app", app_spec.name))

    def list_apps(self) -> list[App]:
        return [self._app(a) for a in self._call("list_apps")]

    def get_app(self, app_id: str) -> App:
        return self._app(self._call("get_app", app_id))

    def delete_app(self, app_id: str) -> None:
        self._call("delete_app", app_id)


class SSH:
    """Two lab hosts with their own sshd; the apps on the head host of each config."""
    runs_processes = True

    def __init__(self, tmp_path):
        from lab import Lab, available
        from tests.ssh_lab import SSHLab
        if available():  # as the lab's own fixture: a failure in CI, else a skip
            (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
                f"no lab: {available()}")
        self.lab = Lab.create(owner_pid=os.getpid())
        self.ssh = ssh = SSHLab(self.lab, tmp_path)
        for host in ("h1", "h2"):
            ssh.add(host)
        project = tmp_path / "project"
        project.mkdir()
        (project / "contract_app.py").write_text(APP)

        def config(name: str):
            made = ssh.config(name, ["h1", "h2"])
            return ssh.write({**made, "project_dir": str(project)})
        self.platform = SSHPlatformIn(ssh, config("contract"))
        self.other = SSHPlatformIn(ssh, config("elsewhere"))

    def later(self):
        return SSHPlatformIn(self.ssh, self.platform.config)

    def pid(self, name: str) -> int:
        path = f"/root/.raydeploy/contract/project/contract/{name}"
        poll_until(lambda: self.lab.run("h1", ["test", "-s", path]).returncode == 0, 30,
                   f"{name} to say its pid", interval=0.2)
        return int(self.lab.run("h1", ["cat", path]).stdout)

    def create_elsewhere(self, name: str) -> str:
        return self.platform.create_app(spec(name)).id

    def stop(self):
        try:
            for platform in (self.platform, self.other):
                for app in platform.list_apps():
                    platform.delete_app(app.id)
        finally:
            self.lab.down()


HARNESSES = {"fake": Fake, "local": Local, "cml": CML, "ssh": SSH}


@pytest.fixture(params=sorted(HARNESSES))
def world(request, tmp_path):
    harness = HARNESSES[request.param](tmp_path)
    try:
        yield harness
    finally:
        harness.stop()


def live(platform, name: str) -> bool:
    return any(a.name == name and a.status in LIVE for a in platform.list_apps())


def test_creating_an_app_is_idempotent_by_its_name(world):
    first = world.platform.create_app(spec("contract-a"))
    again = world.platform.create_app(spec("contract-a"))  # a retry after a lost answer
    assert again.id == first.id
    assert [a.name for a in world.platform.list_apps()].count("contract-a") == 1


def test_listing_sees_what_the_project_holds_and_nothing_of_another(world):
    a = world.platform.create_app(spec("contract-a"))
    world.platform.create_app(spec("contract-b"))
    world.other.create_app(spec("contract-c"))  # another project's (another cluster's)
    world.platform.delete_app(a.id)
    assert sorted(x.name for x in world.platform.list_apps()) == ["contract-b"]
    assert sorted(x.name for x in world.later().list_apps()) == ["contract-b"]


def test_deleting_is_final_and_ends_nothing_else(world):
    if not world.runs_processes:
        pytest.skip("nothing runs on this platform")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True)  # a process it did not start
    try:
        app = world.platform.create_app(spec("contract-a"))
        poll_until(lambda: live(world.platform, "contract-a"), 60, "the app to run")
        pid = world.pid("contract-a")
        world.platform.delete_app(app.id)
        poll_until(lambda: not processes.session_alive(pid) and not _alive(pid), 30,
                   "the app's process to end", interval=0.05)
        assert "contract-a" not in [a.name for a in world.platform.list_apps()]
        try:
            state = world.platform.get_app(app.id)
        except NotFound:
            state = None
        assert state is None or state.status not in LIVE  # a record of its end, at most
        assert bystander.poll() is None  # untouched
    finally:
        bystander.kill()
        bystander.wait()


def test_an_apps_process_outlives_the_command_that_created_it(world):
    if not world.runs_processes:
        pytest.skip("nothing runs on this platform")
    app_id = world.create_elsewhere("contract-a")
    later = world.later()
    poll_until(lambda: live(later, "contract-a"), 60, "the app to run")
    assert _alive(world.pid("contract-a"))
    later.delete_app(app_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"

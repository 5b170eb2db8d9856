"""What every platform promises, proven by the same tests on each (marker ``platform_contract``):
the in-memory fake, the local platform (processes of this machine) and CML (through the
simulator). A platform is done when it passes this suite (docs/architecture.md).

    - creating an app is idempotent by its name (a retry after a lost answer finds it);
    - listing sees what this platform's project holds, and nothing of another's;
    - deleting is final: the app's process ends, and nothing else ends with it;
    - an app's process outlives the command that created it: a later process finds it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from cluster import processes
from cluster.config import parse_config
from cluster.platforms.base import LIVE, AppSpec
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


HARNESSES = {"fake": Fake, "local": Local, "cml": CML}


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

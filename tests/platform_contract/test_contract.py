"""What every platform promises, proven by the same tests on each (marker ``platform_contract``):
the in-memory fake, the local platform (processes of this machine), CML (through the
simulator) and ssh (hosts of the lab). A platform is done when it passes this suite
(docs/architecture.md).

    - creating an app is idempotent by its tags: a retry after a lost answer finds it, and
      so does a later process after the one creating it died between the platform making
      the node and recording it (the ambiguous failure): one app, one process; an app of the
      same name with other tags is refused, the first one untouched;
    - listing sees what this platform's project holds, and nothing of another's; listing by
      tag sees the apps with those tags and no other;
    - deleting is final: the app's process ends, and nothing else ends with it;
    - an app's process outlives the command that created it: a later process finds it;
    - a node's address is the one the platform gives it (in the launcher's platform-neutral
      environment, and as the app's address where the platform knows it up front), and its
      ports there are reachable from where the platform says the cluster is used from: the
      deployer's host, or (``Platform.usage``) inside the platform;
    - a command runs where the node runs (``run_on_node``): it reaches the node, can bind
      the node's address (that machine's), is given what it is given by its environment
      (never its command line), and says how it ended: its exit code, or none when it ran
      out of time.

The ssh platform's harness runs on lab hosts with their own sshd (tests/ssh_lab.py).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from cluster import processes
from cluster.config import parse_config
from cluster.platforms.base import PlatformError
from cluster.platforms.local import LocalPlatform
from cluster.platforms.records import LIVE, RUNNING, App, AppSpec, Ran
from core import crashpoints
from core.errors import NotFound
from core.timing import poll_until
from store import Store
from tests.conftest import ROOT
from tests.fakes import FakePlatform

pytestmark = [pytest.mark.integration, pytest.mark.platform_contract]

# an app that says who it is, in contract/<name> of the project it runs in: its pid, and
# the address (as the launcher reads it) and port it listens at, answering its name there
APP = textwrap.dedent("""\
    import json, os, pathlib, socket
    name = os.environ["CONTRACT_NAME"]
    address = os.environ.get("RAYDEPLOY_NODE_ADDRESS") or \\
        os.environ.get(os.environ.get("RAYDEPLOY_NODE_ADDRESS_FROM", "-"), "")
    listener = socket.create_server((address or "127.0.0.1", 0))
    here = pathlib.Path("contract")
    here.mkdir(exist_ok=True)
    said = {"pid": os.getpid(), "address": address, "port": listener.getsockname()[1]}
    (here / (name + ".tmp")).write_text(json.dumps(said))
    (here / (name + ".tmp")).replace(here / name)
    while True:
        connection, _ = listener.accept()
        connection.sendall(name.encode())
        connection.close()
    """)
# run on a node (``run_on_node``): the node's answer at its address, that address bound
# (only on the machine that has it), and the secret the command was given
ON_NODE = textwrap.dedent("""\
    import os, socket, sys
    address, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((address, port), timeout=10) as connection:
        print(connection.recv(100).decode())
    socket.create_server((address, 0)).close()
    print("bound", os.environ["CONTRACT_SECRET"])
    """)
HOOKS = {"RAYDEPLOY_TEST_HOOKS": "1", "RAYDEPLOY_CRASH_AT": "contract:unrecorded"}
DIES = "from core import crashpoints; crashpoints.enter('contract'); "  # at HOOKS' point


def spec(name: str, platform=None, tags: dict | None = None) -> AppSpec:
    """An app spec, tagged as one of the suite's (by its name, unless ``tags`` say else);
    with the ``platform``, what it tells every node (as the node lifecycle)."""
    return AppSpec(name=name, script="contract_app.py", cpu=1, memory=1,
                   env={"CONTRACT_NAME": name, **(platform.node_environment() if platform else {})},
                   tags={"contract-suite": "1", "contract-app": name} if tags is None else tags)


class Fake:
    """Nothing runs: the promises about records only."""
    runs_processes = False

    def __init__(self, tmp_path):
        self.platform = FakePlatform()
        self.other = FakePlatform()

    def later(self):  # a later process finds what an earlier one made (records)
        return self.platform

    def create_dying(self, name: str) -> None:  # the answer lost (nothing here dies)
        self.platform.create_app(spec(name))

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

    def said(self, name: str) -> dict:
        path = self.project / "contract" / name
        poll_until(path.exists, 30, f"{name} to say its pid", interval=0.05)
        return json.loads(path.read_text())

    CREATE = ("import sys; from store import Store; "
              "from cluster.platforms.local import LocalPlatform; "
              "from tests.platform_contract.test_contract import spec; "
              "state, project, name = sys.argv[1:4]; "
              "p = LocalPlatform(Store(state), project, state); "
              "print(p.create_app(spec(name, p)).id)")

    def create_elsewhere(self, name: str) -> str:
        return elsewhere(self.CREATE, str(self.state), str(self.project), name)

    def create_dying(self, name: str) -> None:
        elsewhere(DIES + self.CREATE, str(self.state), str(self.project), name, dies=True)

    reach = staticmethod(lambda address, port: connect(address, port))

    def stop(self):
        for platform in (self.platform, self.other):
            for app in platform.list_apps():
                platform.delete_app(app.id)


def cml_config(url: str, key: str, runtime: str, project: str):
    return parse_config({"platform": "cml", "cluster_name": "contract",
                         "cml": {"host": url, "api_key": key, "project_name": project,
                                 "shared_host_network": True, "runtime_identifier": runtime}},
                        environ={})


def elsewhere(code: str, *args: str, dies: bool = False) -> str:
    """What ``code`` prints, run by another process (a CLI run, say), which then exits;
    ``dies``: killed (as by kill -9) where HOOKS say, between making a node and recording it."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(HOOKS if dies else {})})
    assert done.returncode == (crashpoints.EXIT_CODE if dies else 0), done.stdout + done.stderr
    return done.stdout.strip()


def connect(address: str, port: int) -> str:
    """What the app answers at ``address:port`` (its name)."""
    with socket.create_connection((address, port), timeout=10) as connection:
        return connection.recv(100).decode()


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

    def said(self, name: str) -> dict:
        path = self.tmp / "sim" / "projects" / self.platform.project_id / "contract" / name
        poll_until(path.exists, 30, f"{name} to say its pid", interval=0.05)
        return json.loads(path.read_text())

    CREATE = ("import sys; from cluster.platforms.cml.platform import CMLPlatform; "
              "from tests.platform_contract.test_contract import cml_config, spec; "
              "url, key, runtime, name = sys.argv[1:5]; "
              "p = CMLPlatform(cml_config(url, key, runtime, 'contract')); "
              "print(p.create_app(spec(name, p)).id)")

    def create_elsewhere(self, name: str) -> str:
        return elsewhere(self.CREATE, self.sim.url, self.key, self.runtime, name)

    def create_dying(self, name: str) -> None:
        elsewhere(DIES + self.CREATE, self.sim.url, self.key, self.runtime, name, dies=True)

    # inside the workspace (Platform.usage): the simulator's pods are this machine's loopback
    reach = staticmethod(lambda address, port: connect(address, port))

    def stop(self):
        self.sim.stop()


# run in the lab's ops host: one call of the ssh platform of a config, its answer as JSON
SSH_CALL = """
import dataclasses, json, sys
from cluster.config import load_config
from cluster.platforms import make_platform
from core import crashpoints
from core.errors import NotFound
from cluster.platforms.base import PlatformError
from store import Store
from tests.platform_contract.test_contract import spec
from core import crashpoints
config = load_config(sys.argv[1])
platform = make_platform(config, Store(config.state_dir))
if platform.find_project(config.cluster_name) is None:
    platform.create_project(config.cluster_name)
method, argument = sys.argv[2], sys.argv[3]
crashpoints.enter("contract")
try:
    if method == "create_app":
        given = json.loads(argument)
        answer = platform.create_app(spec(given["name"], platform, given["tags"]))
    elif method == "apps_tagged":
        answer = platform.apps_tagged(json.loads(argument))
    elif method == "run_on_node":
        given = json.loads(argument)
        answer = platform.run_on_node(platform.get_app(given["app"]), given["argv"],
                                      given["env"], given["timeout"])
    elif method == "list_apps":
        answer = platform.list_apps()
    else:
        answer = getattr(platform, method)(argument)
except NotFound as e:
    answer = {"not_found": str(e)}
except PlatformError as e:
    answer = {"platform_error": str(e)}
print(json.dumps(answer, default=dataclasses.asdict))
"""


class SSHPlatformIn:
    """The ssh platform of a config, each call made by a process of the lab's ops host (the
    hosts are reachable from there only): every call is "a later process"."""

    def __init__(self, ssh, config):
        self.ssh, self.config = ssh, config

    def _call(self, method: str, argument: str = "", dies: bool = False):
        done = self.ssh.python(SSH_CALL, str(self.config), method, argument,
                               env=HOOKS if dies else None)
        assert done.returncode == (crashpoints.EXIT_CODE if dies else 0), done.stderr
        if dies:
            return None
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if isinstance(answer, dict) and "not_found" in answer:
            raise NotFound(answer["not_found"])
        if isinstance(answer, dict) and "platform_error" in answer:
            raise PlatformError(answer["platform_error"])
        return answer

    def node_environment(self) -> dict:
        return {}  # the platform's own is added where the call runs (SSH_CALL)

    @staticmethod
    def _app(raw: dict) -> App:
        return App(**{**raw, "spec": AppSpec(**raw["spec"])})

    def create_app(self, app_spec: AppSpec) -> App:
        return self._app(self._call("create_app", json.dumps({"name": app_spec.name,
                                                              "tags": app_spec.tags})))

    def list_apps(self) -> list[App]:
        return [self._app(a) for a in self._call("list_apps")]

    def apps_tagged(self, tags: dict) -> list[App]:
        return [self._app(a) for a in self._call("apps_tagged", json.dumps(tags))]

    def get_app(self, app_id: str) -> App:
        return self._app(self._call("get_app", app_id))

    def delete_app(self, app_id: str) -> None:
        self._call("delete_app", app_id)

    def run_on_node(self, app: App, argv: list[str], env: dict | None = None,
                    timeout: float = 60.0) -> Ran:
        return Ran(**self._call("run_on_node", json.dumps(
            {"app": app.id, "argv": argv, "env": env or {}, "timeout": timeout})))


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

    def said(self, name: str) -> dict:
        path = f"/root/.raydeploy/contract/project/contract/{name}"
        poll_until(lambda: self.lab.run("h1", ["test", "-s", path]).returncode == 0, 30,
                   f"{name} to say its pid", interval=0.2)
        return json.loads(self.lab.run("h1", ["cat", path]).stdout)

    def create_elsewhere(self, name: str) -> str:
        return self.platform.create_app(spec(name)).id

    def create_dying(self, name: str) -> None:
        self.platform._call("create_app", json.dumps({"name": name, "tags": spec(name).tags}),
                            dies=True)

    def reach(self, address: str, port: int) -> str:
        """From the deployer's host (ops), where the hosts are reachable."""
        done = self.ssh.python("import sys; from tests.platform_contract.test_contract import "
                               "connect; print(connect(sys.argv[1], int(sys.argv[2])))",
                               address, str(port))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

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


def test_creating_an_app_is_idempotent_by_its_tags(world):
    first = world.platform.create_app(spec("contract-a"))
    again = world.platform.create_app(spec("contract-a"))  # a retry after a lost answer
    assert again.id == first.id and again.spec.tags == spec("contract-a").tags
    assert [a.name for a in world.platform.list_apps()].count("contract-a") == 1


def test_an_app_of_the_same_name_with_other_tags_is_refused(world):
    """Names are unique (CML's rule, and what people and logs go by): a spec of a taken name
    that is another app (its tags differ) is refused, and the first app stays as it was."""
    first = world.platform.create_app(spec("contract-a"))
    with pytest.raises(PlatformError, match="contract-a.*other tags"):
        world.platform.create_app(spec("contract-a", tags={"contract-app": "another"}))
    assert [(a.id, a.spec.tags) for a in world.platform.list_apps()] == [(first.id,
                                                                          first.spec.tags)]


def test_creating_is_idempotent_by_tags_after_the_creator_died_unrecorded(world):
    """The creating process is killed right after the platform made the node and before it
    was recorded or answered: a later create with its tags finds it, nothing is made twice."""
    world.create_dying("contract-a")
    later = world.later()
    app = later.create_app(spec("contract-a"))  # the retry (a --resume)
    assert [a.name for a in later.list_apps()] == ["contract-a"]
    if not world.runs_processes:
        return
    poll_until(lambda: any(a.id == app.id and a.status == RUNNING for a in later.list_apps()),
               60, "the app to be found running")
    assert running_with("contract-a") == [world.said("contract-a")["pid"]]  # one process


def test_a_nodes_address_is_reachable_from_where_the_platform_says(world):
    if not world.runs_processes:
        pytest.skip("nothing runs on this platform")
    app = world.platform.create_app(spec("contract-a", world.platform))
    said = world.said("contract-a")
    assert said["address"], "the platform gave the node no address"
    assert app.ip in (None, said["address"])  # where known up front, the same
    assert world.reach(said["address"], said["port"]) == "contract-a"


def test_a_command_runs_where_the_node_runs_and_says_how_it_ended(world):
    if not world.runs_processes:
        pytest.skip("nothing runs on this platform")
    app = world.platform.create_app(spec("contract-a", world.platform))
    said = world.said("contract-a")
    ran = world.platform.run_on_node(app, ["python", "-c", ON_NODE, said["address"],
                                           str(said["port"])], {"CONTRACT_SECRET": "s3cret"}, 30)
    assert (ran.code, ran.output.split()) == (0, ["contract-a", "bound", "s3cret"]), ran
    failed = world.platform.run_on_node(app, ["python", "-c", "print('no'); exit(3)"], {}, 30)
    assert (failed.code, failed.output.strip()) == (3, "no")
    slow = world.platform.run_on_node(app, ["python", "-c", "import time; print('started', "
                                            "flush=True); time.sleep(60)"], {}, 2)
    assert (slow.code, slow.output.strip()) == (None, "started")


def test_listing_sees_what_the_project_holds_and_nothing_of_another(world):
    a = world.platform.create_app(spec("contract-a"))
    world.platform.create_app(spec("contract-b"))
    world.other.create_app(spec("contract-c"))  # another project's (another cluster's)
    world.platform.create_app(spec("contract-d", tags={"contract-suite": "2"}))
    world.platform.delete_app(a.id)
    assert sorted(x.name for x in world.platform.list_apps()) == ["contract-b", "contract-d"]
    later = world.later()
    assert sorted(x.name for x in later.list_apps()) == ["contract-b", "contract-d"]
    assert [x.name for x in later.apps_tagged({"contract-suite": "1"})] == ["contract-b"]
    assert [x.name for x in later.apps_tagged({"contract-app": "contract-b",
                                               "contract-suite": "1"})] == ["contract-b"]
    assert later.apps_tagged({"contract-app": "contract-c"}) == []  # another project's
    assert later.apps_tagged({"contract-suite": "1", "contract-app": "contract-d"}) == []


def test_deleting_is_final_and_ends_nothing_else(world):
    if not world.runs_processes:
        pytest.skip("nothing runs on this platform")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True)  # a process it did not start
    try:
        app = world.platform.create_app(spec("contract-a"))
        poll_until(lambda: live(world.platform, "contract-a"), 60, "the app to run")
        pid = world.said("contract-a")["pid"]
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
    assert _alive(world.said("contract-a")["pid"])
    later.delete_app(app_id)


def running_with(name: str) -> list[int]:
    """The live processes of this machine (the lab's hosts share its pid namespace) started
    as the contract app ``name``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if f"CONTRACT_NAME={name}".encode() in environ and _alive(int(entry)):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"

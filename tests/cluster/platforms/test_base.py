"""The Platform interface's own behaviour (cluster/platforms/base.py): the records it speaks
in, and the defaults a platform gets unless it overrides them. What every platform promises:
tests/platform_contract."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from cluster.config import parse_config
from cluster.platforms.base import ConfigShapeError, Platform, PlatformError
from cluster.platforms.records import RUN_TERMINAL, STARTING, App, AppSpec, ForeignRay, JobRun, JobSpec
from core.errors import Invalid

SPEC = JobSpec(name="setup", script="jobs/setup_environment.py", arguments="--venv",
               environment={"A": "1"})


# -- records ---------------------------------------------------------------------------------------
def test_a_job_specs_hash_is_stable_and_sees_every_field():
    assert SPEC.spec_hash == JobSpec(name="setup", script="jobs/setup_environment.py",
                                     arguments="--venv", environment={"A": "1"}).spec_hash
    assert len(SPEC.spec_hash) == 16
    changed = [replace(SPEC, name="other"), replace(SPEC, script="x.py"),
               replace(SPEC, arguments=""), replace(SPEC, cpu=2.0), replace(SPEC, memory=4.0),
               replace(SPEC, timeout=60), replace(SPEC, parent="git_sync"),
               replace(SPEC, environment={"A": "2"})]
    assert len({SPEC.spec_hash, *(s.spec_hash for s in changed)}) == 1 + len(changed)


def test_a_job_specs_hash_does_not_depend_on_the_order_of_its_environment():
    one = replace(SPEC, environment={"A": "1", "B": "2"})
    assert one.spec_hash == replace(SPEC, environment={"B": "2", "A": "1"}).spec_hash


@pytest.mark.parametrize("status", sorted(RUN_TERMINAL))
def test_a_run_in_a_terminal_status_has_finished(status):
    assert JobRun(id="r", job_id="j", status=status).finished


@pytest.mark.parametrize("status", ["scheduling", "running", "starting"])
def test_a_run_still_going_has_not_finished(status):
    assert not JobRun(id="r", job_id="j", status=status).finished


def test_a_config_shape_error_is_invalid_input_naming_each_field():
    error = ConfigShapeError({"cai.nope": ["Unknown field."], "cai": ["Must be a mapping."]})
    assert isinstance(error, Invalid)
    assert str(error) == "cai.nope: Unknown field.; cai: Must be a mapping."
    assert error.errors == {"cai.nope": ["Unknown field."], "cai": ["Must be a mapping."]}


# -- the defaults a platform gets ------------------------------------------------------------------
class Minimal(Platform):
    """A platform that only creates apps (each in its own thread, as the default does)."""
    name = "minimal"

    def __init__(self, config=None, gate: threading.Barrier | None = None):
        super().__init__(config)
        self.gate = gate
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def create_app(self, spec: AppSpec) -> App:
        with self.lock:
            self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(timeout=10)  # every creation must be under way at once to pass
        return App(id=f"id-{spec.name}", name=spec.name, status=STARTING, spec=spec)


def specs(n: int) -> list[AppSpec]:
    return [AppSpec(name=f"w-{i}", script="cluster/launcher.py", cpu=1, memory=1)
            for i in range(n)]


def test_many_apps_are_created_at_once_and_returned_in_the_order_asked():
    platform = Minimal(gate=threading.Barrier(4))
    apps = platform.create_apps(specs(4))
    assert [a.name for a in apps] == ["w-0", "w-1", "w-2", "w-3"]
    assert len(platform.threads) == 4


def test_one_app_is_created_in_the_callers_thread():
    platform = Minimal()
    assert [a.name for a in platform.create_apps(specs(1))] == ["w-0"]
    assert platform.threads == {threading.current_thread().name}
    assert platform.create_apps([]) == []


def test_the_project_is_named_after_the_cluster_and_nothing_is_in_the_way(tmp_path):
    config = parse_config({"cluster_name": "rd-x", "state_dir": str(tmp_path / "s")}, environ={})
    platform = Minimal(config)
    assert platform.project_name == "rd-x"
    assert platform.check() == [] and platform.job_environment() == {}
    assert platform.node_environment() == {}
    app = Minimal().create_app(specs(1)[0])
    assert platform.public_url(app) is None and platform.app_log_tail(app) == ""
    assert platform.job_run_log("r-1") == ""


def test_the_default_config_section_hooks_change_nothing():
    doc = {"workers": {"count": 2}}
    section: dict = {}
    assert Platform.map_legacy(doc, []) is doc
    assert Platform.env_defaults(section, {"ANY": "1"}) == {} and section == {}
    assert Platform.required_when_selected({}) == {}
    assert Platform.published_port({"CDSW_APP_PORT": "8090"}) is None
    assert Platform.control_plane_url(None, [], print) is None
    assert Platform.usage() is None


def test_foreign_ray_is_shown_by_what_started_its_session_even_after_pids_wrapped():
    started = (30000, 1, "python -m ray.scripts.scripts start --block")
    wrapped = ForeignRay("h1", 30000, ((212, 9, "ray::IDLE"), started))  # a later, lower pid
    assert wrapped.first == started
    gone = ForeignRay("h1", 30000, ((212, 9, "ray::IDLE"), (31000, 2, "raylet")))  # no leader
    assert gone.first == (212, 9, "ray::IDLE")


# -- a platform of nodes only: the defaults for a project, jobs and files ----------------------
def nodes_only(tmp_path, jobs: str = "jobs: []\n", **config):
    from checkpoints.factory import make_context
    from tests.fakes import FakeNodes, FakeRay
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "jobs.yaml").write_text(jobs)
    cfg = parse_config({"cluster_name": "rd", "state_dir": str(tmp_path / "s"),
                        "project_dir": str(tmp_path), "jobs_config": str(tmp_path / "jobs.yaml"),
                        "serve": {"applications": []}, **config}, environ={})
    return make_context(cfg, platform=FakeNodes(cfg), dashboard_factory=FakeRay().client)


def test_a_platform_of_nodes_only_has_a_project_to_make_no_jobs_and_no_files(tmp_path):
    from checkpoints.steps.job_creation import JobCreation
    from checkpoints.steps.project_setup import ProjectSetup
    ctx = nodes_only(tmp_path)
    assert ProjectSetup().plan(ctx).actions == () and ProjectSetup().verify(ctx) == []
    assert JobCreation().plan(ctx).actions == () and JobCreation().verify(ctx) == []
    assert ctx.platform.read_file("ray_version") is None
    ctx.platform.delete_file("nodes/rd-worker-1.json")  # nothing to delete: no error
    with pytest.raises(PlatformError, match="the fake platform keeps no project files"):
        ctx.platform.write_file("monitoring/prometheus.yml", "x")
    with pytest.raises(PlatformError, match="the fake platform runs no jobs"):
        ctx.platform.create_job(SPEC, None)


def test_prerequisites_name_what_a_platform_of_nodes_only_cannot_do_for_the_config(tmp_path):
    from checkpoints.steps.prerequisites import Prerequisites
    ctx = nodes_only(tmp_path, jobs="jobs:\n  - {name: setup, script: jobs/setup.py}\n",
                     monitoring={"enabled": True})
    problems = Prerequisites().problems(ctx)
    assert any(p.startswith("jobs_config lists setup, and the fake platform runs no jobs")
               for p in problems), problems
    assert any("the fake platform keeps none" in p for p in problems), problems
    plain = Prerequisites().problems(nodes_only(tmp_path / "plain"))
    assert not any("runs no jobs" in p or "keeps none" in p for p in plain), plain

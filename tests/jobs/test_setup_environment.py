"""The environment job's pure parts (jobs/setup_environment.py): which requirements are pinned,
the check of the interpreter a local cluster runs in, and the venv build skipped when its
requirements are already installed. Building a venv starts processes: not done here (the
job runs for real in tests/cml_simulator/test_seed_jobs.py)."""
from __future__ import annotations

import hashlib
import importlib.metadata
import sys

import pytest

from jobs import setup_environment
from jobs.setup_environment import build_venv, check_current, pinned
from tests.conftest import ROOT


@pytest.fixture
def requirements(tmp_path, monkeypatch):
    """A requirements file of the test's own, where the job reads it."""
    path = tmp_path / "requirements.txt"
    monkeypatch.setattr(setup_environment, "REQUIREMENTS", path)
    return path


@pytest.fixture
def no_processes(monkeypatch):
    """A path that would start pip or venv fails the test instead."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"would have run {args[0] if args else kwargs}")
    monkeypatch.setattr("jobs.setup_environment.subprocess.run", refuse)


# -- pinned requirements ---------------------------------------------------------------------------
def test_pinned_requirements_give_their_name_and_version():
    lines = ["ray[serve]==2.60.0", "flask==3.1.3  # the web layer", "zope.interface==7.2",
             "my_pkg-x==1.0rc1", "typing-extensions==4.12.2 ; python_version < '3.12'"]
    assert list(pinned(lines)) == [("ray", "2.60.0"), ("flask", "3.1.3"),
                                   ("zope.interface", "7.2"), ("my_pkg-x", "1.0rc1"),
                                   ("typing-extensions", "4.12.2")]


@pytest.mark.parametrize("line", ["", "   ", "# ray==2.60.0", "requests>=2", "numpy",
                                  "-r other.txt", "--index-url https://pypi.example/simple",
                                  "git+https://example.com/repo.git"])
def test_lines_that_pin_nothing_are_skipped(line):
    assert list(pinned([line])) == []


def test_every_pin_of_the_projects_requirements_is_read():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = dict(pinned(lines))
    assert pins["ray"] == "2.60.0"
    assert len(pins) == sum(1 for line in lines if "==" in line.split("#", 1)[0])


# -- checking the interpreter a local cluster runs in ----------------------------------------------
def test_an_interpreter_with_every_pin_is_ok(requirements, capsys):
    have = importlib.metadata.version("pytest")
    requirements.write_text(f"# tests\npytest=={have}\n")
    assert check_current() == 0
    assert capsys.readouterr().out == f"environment ok: {sys.executable}\n"


def test_missing_or_different_requirements_are_each_named(requirements, capsys):
    have = importlib.metadata.version("pytest")
    requirements.write_text(f"pytest==0.0.1\nno-such-package-raydeploy==1.0\npyyaml=="
                            f"{importlib.metadata.version('pyyaml')}\n")
    assert check_current() == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"missing or different requirements: pytest==0.0.1 (have {have}), "
        "no-such-package-raydeploy==1.0 (have none)",
        "install them with: pip install -r requirements.txt"]


# -- a venv in a cloned project --------------------------------------------------------------------
def test_a_venv_whose_requirements_are_installed_is_not_built_again(requirements, tmp_path,
                                                                     no_processes, capsys):
    requirements.write_text("pyyaml==6.0.3\n")
    venv = tmp_path / "venv"
    venv.mkdir()
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    (venv / ".requirements.sha256").write_text(digest)
    assert build_venv(venv) == 0
    assert capsys.readouterr().out == (f"{venv}: requirements already installed "
                                       f"({digest[:12]}), skipping\n")


def test_in_a_cloned_project_the_job_builds_the_venv_it_is_told(requirements, tmp_path,
                                                                no_processes, monkeypatch, capsys):
    requirements.write_text("pyyaml==6.0.3\n")
    venv = tmp_path / "nodes-venv"
    venv.mkdir()
    (venv / ".requirements.sha256").write_text(
        hashlib.sha256(requirements.read_bytes()).hexdigest())
    monkeypatch.setattr(sys, "argv", ["jobs/setup_environment.py"])
    monkeypatch.setenv("RAYDEPLOY_PROJECT_CLONE", "1")
    monkeypatch.setenv("RAYDEPLOY_VENV", str(venv))
    assert setup_environment.main() == 0
    assert capsys.readouterr().out.startswith(f"{venv}: requirements already installed")


def test_in_your_own_working_tree_the_job_checks_the_interpreter(requirements, no_processes,
                                                                monkeypatch, capsys):
    requirements.write_text("no-such-package-raydeploy==1.0\n")
    monkeypatch.setattr(sys, "argv", ["jobs/setup_environment.py"])
    monkeypatch.delenv("RAYDEPLOY_PROJECT_CLONE", raising=False)
    assert setup_environment.main() == 1
    assert "no-such-package-raydeploy==1.0 (have none)" in capsys.readouterr().out


def test_pins_written_with_spaces_or_the_arbitrary_equality_are_read():
    assert list(pinned(["ray == 2.49.0", "flask===3.0.0  # exact", "pkg[extra] ==1.0"])) == [
        ("ray", "2.49.0"), ("flask", "3.0.0"), ("pkg", "1.0")]

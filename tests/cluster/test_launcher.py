"""The node launcher's environment for Ray: the interpreter's directory first on PATH, the
project on PYTHONPATH, and no platform secret left for the cluster's code."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from cluster.launcher import NOT_FOR_RAY, with_project_on_path, without_platform_secrets


def test_the_interpreter_that_runs_ray_comes_first_on_path_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interpreter = str(Path(sys.executable).parent)
    environ = {"PATH": os.pathsep.join(["/usr/bin", interpreter, "/bin"]), "PYTHONPATH": "/x"}
    with_project_on_path(environ)
    assert environ["PATH"].split(os.pathsep) == [interpreter, "/usr/bin", "/bin"]
    assert environ["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/x"]
    with_project_on_path(environ)  # again (the launcher after its venv re-exec): no change
    assert environ["PATH"].split(os.pathsep) == [interpreter, "/usr/bin", "/bin"]


def test_a_node_without_path_still_gets_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ: dict = {}
    with_project_on_path(environ)
    assert environ["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert len(environ["PATH"].split(os.pathsep)) > 1  # the system's default follows


def test_platform_secrets_are_not_handed_to_ray():
    environ = {name: "secret" for name in NOT_FOR_RAY}
    environ.update(RAY_AUTH_TOKEN="ray", CDSW_IP_ADDRESS="10.0.0.1", CDSW_PROJECT_ID="p")
    without_platform_secrets(environ)
    assert environ == {"RAY_AUTH_TOKEN": "ray", "CDSW_IP_ADDRESS": "10.0.0.1",
                       "CDSW_PROJECT_ID": "p"}
    assert "CDSW_APIV2_KEY" in NOT_FOR_RAY

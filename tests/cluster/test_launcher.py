"""The node launcher's environment for Ray: the interpreter's directory first on PATH, the
project on PYTHONPATH, and no platform secret left for the cluster's code."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cluster.launcher import (
    OWN_SECRETS,
    from_platform,
    with_project_on_path,
    without_platform_secrets,
)
from cluster.platforms.cml import CMLPlatform


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
    """Ours always; the platform's as it names them (RAYDEPLOY_PLATFORM_SECRETS)."""
    secrets = {name: "secret" for name in (*OWN_SECRETS, *CMLPlatform.secret_env)}
    environ = {**secrets, "RAY_AUTH_TOKEN": "ray", "CDSW_IP_ADDRESS": "10.0.0.1",
               "RAYDEPLOY_PLATFORM_SECRETS": ",".join(CMLPlatform.secret_env)}
    without_platform_secrets(environ)
    assert environ == {"RAY_AUTH_TOKEN": "ray", "CDSW_IP_ADDRESS": "10.0.0.1",
                       "RAYDEPLOY_PLATFORM_SECRETS": "CDSW_APIV2_KEY,CML_API_KEY"}


def test_a_node_finds_its_address_where_the_platform_says():
    from cluster.config import parse_config
    assert from_platform({"RAYDEPLOY_NODE_ADDRESS": "127.0.0.5"}, "NODE_ADDRESS") == "127.0.0.5"
    assert from_platform({"RAYDEPLOY_NODE_ADDRESS_FROM": "NOWHERE"}, "NODE_ADDRESS") is None
    config = parse_config({"platform": "cml", "cml": {"host": "https://ml.example",
                                                      "api_key": "k" * 20}}, environ={})
    # a CML pod: what the platform put in the app's environment, and what CML gives the pod
    pod = {**CMLPlatform(config).node_environment(), "CDSW_IP_ADDRESS": "10.1.2.3",
           "CDSW_APP_PORT": "8100"}
    assert from_platform(pod, "NODE_ADDRESS") == "10.1.2.3"
    assert from_platform(pod, "APP_PORT") == "8100"


@pytest.mark.integration  # starts the launcher
def test_the_head_leaves_the_ray_token_for_the_projects_sessions_only_when_asked(tmp_path):
    """On CML the head writes the token into the project files (0600), where the project's
    sessions and jobs read it; elsewhere it is only in the state dir."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT
    stub = tmp_path / "stub"  # a `ray` that only says it ran: the launcher execs it
    (stub / "ray" / "scripts").mkdir(parents=True)
    (stub / "ray" / "__init__.py").write_text("")
    (stub / "ray" / "scripts" / "__init__.py").write_text("")
    (stub / "ray" / "scripts" / "scripts.py").write_text("print('ray started')\n")
    for publish, files in (("1", tmp_path / "cml"), ("", tmp_path / "local")):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{stub}:{ROOT}",
               "RAYDEPLOY_ROLE": "head", "RAYDEPLOY_APP_NAME": "c-head",
               "RAYDEPLOY_NODE_ADDRESS": "127.0.0.1", "RAYDEPLOY_PROJECT_FILES": str(files),
               "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "t" * 32,
               "RAYDEPLOY_RAY_ARGS": json.dumps({"port": 6390}),
               "RAYDEPLOY_PUBLISH_RAY_TOKEN": publish}
        ran = subprocess.run([sys.executable, str(ROOT / "cluster" / "launcher.py")], env=env,
                             capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert "ray started" in ran.stdout, ran.stderr
        assert (files / "head_address").read_text() == "127.0.0.1:6390"
        token = files / "ray_token"
        if publish:
            assert token.read_text() == "t" * 32 and token.stat().st_mode & 0o777 == 0o600
        else:
            assert not token.exists()

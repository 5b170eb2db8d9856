"""A control plane of its own cluster (``python -m api_server --control-plane``) and the CLI
pointed at it, shared by the tests that need one (a pytest plugin, loaded by
tests/conftest.py): deployed once a session, converged back by the tests that change it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, ApiServer, base_config, clean_env, cli, stop_recorded_apps, write_config

TOKENS = {"ci": ("operator", "ci-token-0123456789abcdef"),
          "alice": ("approver", "alice-token-0123456789ab"),
          "bob": ("operator+approver", "bob-token-0123456789abcd")}


class Plane:
    """A control plane of its own cluster, and the CLI pointed at it."""

    def __init__(self, root: Path):
        self.root = root
        self.state_dir = root / "state"
        self.config = write_config(root / "cluster.yaml", base_config(
            self.state_dir, name="rdplane", workers=1))
        self.env = clean_env(RAYDEPLOY_API_TOKENS=",".join(
            f"{p}:{roles}:{token}" for p, (roles, token) in TOKENS.items()))
        self.server: ApiServer | None = None
        self.start()

    def start(self, **extra_env) -> None:
        port = self.server.port if self.server else None
        self.server = ApiServer(self.config, {**self.env, **extra_env}, "127.0.0.1",
                                "--control-plane", port=port)

    def cli(self, *args, token: str | None = "ci", workers: int | None = None, **kw):
        env = clean_env(**({"RAYDEPLOY_TOKEN": TOKENS[token][1]} if token else {}),
                        **({"RAY_NUM_WORKERS": str(workers)} if workers is not None else {}))
        return cli("--server", self.server.url, *args, config=self.config, env=env, **kw)

    def spawn(self, *args, token: str = "ci", workers: int | None = None) -> subprocess.Popen:
        env = clean_env(RAYDEPLOY_TOKEN=TOKENS[token][1],
                        **({"RAY_NUM_WORKERS": str(workers)} if workers is not None else {}))
        return subprocess.Popen([sys.executable, str(ROOT / "deploy_master.py"), "--config",
                                 str(self.config), "--server", self.server.url, *args],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def workers(self) -> list[str]:
        answer = requests.get(f"{self.server.url}/api/v1/resources/nodes", timeout=30, headers={
            "Authorization": f"Bearer {TOKENS['ci'][1]}"}).json()
        return sorted(n["platform_app_name"] for n in answer["nodes"]
                      if n["node_type"] == "worker" and n["platform_app_name"])


@pytest.fixture(scope="session")
def plane(tmp_path_factory):
    root = tmp_path_factory.mktemp("plane")
    plane = Plane(root)
    try:
        result = plane.cli("--deploy", "--auto-approve", token="bob", timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr + plane.server.output()
        plane.deploy_output = result.stdout
        yield plane
    finally:
        if plane.server is not None:
            plane.cli("--teardown", "--auto-approve", token="bob", timeout=120)
            plane.server.stop()
        stop_recorded_apps(plane.state_dir)



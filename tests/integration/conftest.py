"""One real local cluster (head + 2 workers + the hello app) shared by the integration tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import base_config, clean_env, cli, stop_recorded_apps, write_config


@dataclass
class LiveCluster:
    config_path: Path
    state_dir: Path
    deploy_output: str
    config: dict

    def cli(self, *args, workers: int | None = None, config: Path | None = None, **kw):
        env = clean_env(**({"RAY_NUM_WORKERS": str(workers)} if workers is not None else {}))
        return cli(*args, config=config or self.config_path, env=env, **kw)

    def store(self):
        from store import Store
        return Store(self.state_dir)

    def manager(self):
        from checkpoints.factory import make_context
        from cluster.config import load_config
        return make_context(load_config(self.config_path, environ={})).cluster


@pytest.fixture(scope="session")
def live_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    state_dir = root / "state"
    config = base_config(state_dir)
    path = write_config(root / "cluster.yaml", config)
    try:
        result = cli("--deploy", "--auto-approve", config=path, timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr
        yield LiveCluster(path, state_dir, result.stdout, config)
    finally:
        cli("--teardown", "--auto-approve", config=path, timeout=120)
        stop_recorded_apps(state_dir)

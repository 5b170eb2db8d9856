"""One real local cluster (head + 2 workers + the hello app) shared by the integration tests
(a pytest plugin: tests/conftest.py loads it, so every test package can use the fixtures).

Tests do not depend on each other's order: each gets the cluster through ``cluster``, which
afterwards converges it back to the configured shape (head + 2 workers, the configured apps)
with ``--deploy --auto-approve``. That costs ~0.5 s when the test left it as it found it."""
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

    def worker_names(self) -> list[str]:
        return [a.name for a in self.manager().inventory.worker_apps()]

    def alive_nodes(self) -> list:
        return [n for n in self.manager().inventory.nodes() if n.alive]

    def restore(self) -> None:
        """Back to the configured shape, whatever the last test did."""
        result = self.cli("--deploy", "--auto-approve", timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr


def deploy_cluster(root: Path, **config_extra) -> LiveCluster:
    state_dir = root / "state"
    config = base_config(state_dir, **config_extra)
    path = write_config(root / "cluster.yaml", config)
    result = cli("--deploy", "--auto-approve", config=path, timeout=400)
    if result.returncode != 0:
        cli("--teardown", "--auto-approve", config=path, timeout=120)
        stop_recorded_apps(state_dir)
        raise AssertionError(result.stdout + result.stderr)
    return LiveCluster(path, state_dir, result.stdout, config)


def tear_down(cluster_root: Path) -> None:
    cli("--teardown", "--auto-approve", config=cluster_root / "cluster.yaml", timeout=120)
    stop_recorded_apps(cluster_root / "state")


@pytest.fixture(scope="session")
def live_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    try:
        yield deploy_cluster(root)
    finally:
        tear_down(root)


@pytest.fixture
def cluster(live_cluster):
    """The shared cluster, converged back to its configured shape after the test."""
    yield live_cluster
    live_cluster.restore()

"""Tearing a cluster down is gated, and leaves no process behind (a small cluster of its own:
head only, no apps, so the shared one stays up for the other tests)."""
import time

import pytest

from tests.conftest import our_ray_processes
from tests.live_cluster import deploy_cluster, tear_down

pytestmark = pytest.mark.integration


@pytest.fixture
def small_cluster(tmp_path):
    try:
        yield deploy_cluster(tmp_path, name="rdsmall", workers=0,
                             serve={"applications": [], "management_api": {"enabled": False}})
    finally:
        tear_down(tmp_path)


def test_teardown_is_gated_and_leaves_no_process(small_cluster):
    result = small_cluster.cli("--teardown", "--no-wait")
    assert result.returncode == 3 and "DESTRUCTIVE" in result.stdout
    assert our_ray_processes(small_cluster.state_dir)
    result = small_cluster.cli("--teardown", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 15
    while our_ray_processes(small_cluster.state_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert our_ray_processes(small_cluster.state_dir) == []
    assert small_cluster.store().platform_records.apps() == []
    # and the audit trail shows the automatic approval
    assert small_cluster.store().approvals.decisions("teardown")[0].source == "auto"

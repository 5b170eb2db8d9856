"""Last: tearing the shared cluster down is gated, and leaves no process behind."""
import time

from tests.conftest import our_ray_processes


def test_zz_teardown_is_gated_and_leaves_no_process(live_cluster):
    result = live_cluster.cli("--teardown", "--no-wait")
    assert result.returncode == 3 and "DESTRUCTIVE" in result.stdout
    assert our_ray_processes(live_cluster.state_dir)
    result = live_cluster.cli("--teardown", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 15
    while our_ray_processes(live_cluster.state_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert our_ray_processes(live_cluster.state_dir) == []
    assert live_cluster.store().platform_apps() == []
    # and the audit trail shows the automatic approval
    assert live_cluster.store().approvals("teardown")[0]["source"] == "auto"

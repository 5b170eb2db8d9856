"""The live checks of a deployed cluster (cluster/health.py) on a FakeRay: what each check
says, and the waits for apps to serve again on a fake clock. The validation job they can
add: tests/cluster/test_job_check.py; an explicit RAY_ADDRESS: test_ray_address.py."""
from __future__ import annotations

from cluster.health import (
    all_checks,
    head_check,
    node_checks,
    resource_checks,
    serve_checks,
    serving,
    still_serving,
    stuck_replicas,
)
from cluster.manager import ClusterManager
from tests.fakes import FakeClock, world


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


def replicas(*states, start=1.0) -> dict:
    return {"D": {"message": "", "replicas": [
        {"replica_id": f"r{i}", "state": s, "start_time_s": start} for i, s in enumerate(states)]}}


def on_a_fake_clock(w) -> tuple[ClusterManager, FakeClock]:
    """The world's cluster, built again with a clock that moves only when waited on."""
    clock = FakeClock()
    cluster = ClusterManager(w.ctx.config, w.ctx.store, w.platform, clock, w.ray.client)
    cluster.serve.probe = w.ray.probe
    return cluster, clock


# -- the head and the nodes ------------------------------------------------------------------------
def test_without_a_head_app_the_head_check_fails_and_nothing_else_is_checked(tmp_path):
    w = world(tmp_path, with_head=False)
    check = head_check(w.ctx.cluster)
    assert (check.ok, check.detail) == (False, "no running head app")
    assert all_checks(w.ctx.cluster) == [check]


def test_the_head_check_names_the_head_and_whether_its_dashboard_answers(tmp_path):
    w = world(tmp_path)
    check = head_check(w.ctx.cluster)
    assert check.ok and check.detail.startswith("rd-head GCS at ")
    assert check.detail.endswith(":8265 healthy")
    w.ray.healthy = False
    down = head_check(w.ctx.cluster)
    assert not down.ok and down.detail.endswith("not answering")
    assert [c.name for c in all_checks(w.ctx.cluster)] == ["head"]


def test_every_expected_node_alive_passes(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.worker(2)
    [check] = node_checks(w.ctx.cluster, expected_workers=2)
    assert check.ok and check.detail == "3 of 3 nodes ALIVE, expected 3"
    [fewer] = node_checks(w.ctx.cluster, expected_workers=3)
    assert not fewer.ok and fewer.detail == "3 of 3 nodes ALIVE, expected 4"


def test_an_app_without_an_alive_node_is_named(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.worker(2, alive=False)
    w.platform.add_app("rd-worker-3")  # running on the platform, no Ray node at all
    checks = by_name(node_checks(w.ctx.cluster, expected_workers=3))
    assert not checks["nodes_alive"].ok
    assert checks["nodes_alive"].detail == "2 of 4 nodes ALIVE, expected 4"
    assert checks["apps_have_nodes"].detail == "no ALIVE Ray node for rd-worker-2, rd-worker-3"


def test_nodes_sized_otherwise_than_configured_are_named(tmp_path):
    w = world(tmp_path, head_cpu=1)
    w.worker(1)
    _, big = w.worker(2, cpu=2)
    [check] = resource_checks(w.ctx.cluster)
    assert not check.ok
    assert check.detail == "rd-worker-2: CPU 2 GPU 0, configured CPU 1.0 GPU 0"
    next(n for n in w.ray.nodes if n["node_id"] == big)["state"] = "DEAD"
    assert resource_checks(w.ctx.cluster)[0].ok  # only ALIVE nodes are sized


def test_workers_are_expected_with_their_configured_gpus(tmp_path):
    w = world(tmp_path, workers={"gpus": 1})
    _, node = w.worker(1, gpus=1)
    [check] = resource_checks(w.ctx.cluster)
    assert check.detail == "rd-worker-1: CPU 1.0 GPU 0, configured CPU 1.0 GPU 1"
    next(n for n in w.ray.nodes if n["node_id"] == node)["resources_total"]["GPU"] = 1
    assert resource_checks(w.ctx.cluster)[0].ok  # and the head none


# -- Serve apps ------------------------------------------------------------------------------------
def test_a_configured_app_that_runs_and_answers_passes(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello")
    checks = by_name(serve_checks(w.ctx.cluster))
    assert set(checks) == {"app:hello", "http:hello"}
    assert checks["app:hello"].ok and checks["app:hello"].detail == "hello is RUNNING"
    assert checks["http:hello"].ok and checks["http:hello"].detail == "GET /hello: 200"


def test_a_configured_app_missing_from_the_cluster_fails(tmp_path):
    w = world(tmp_path)
    [check] = serve_checks(w.ctx.cluster)
    assert (check.name, check.ok, check.detail) == ("app:hello", False, "hello is MISSING")


def test_an_app_that_does_not_run_says_rays_message_and_is_not_probed(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello", status="DEPLOY_FAILED")
    w.ray.serve["hello"]["message"] = "ImportError: no module named hello\n"
    [check] = serve_checks(w.ctx.cluster)
    assert not check.ok
    assert check.detail == "hello is DEPLOY_FAILED: ImportError: no module named hello"


def test_an_app_that_runs_but_does_not_answer_fails_its_http_check(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello")
    w.ray.silent.add("/hello")
    checks = by_name(serve_checks(w.ctx.cluster))
    assert checks["app:hello"].ok and not checks["http:hello"].ok
    assert by_name(serve_checks(w.ctx.cluster, probe=False)).keys() == {"app:hello"}


def test_apps_the_config_does_not_name_are_checked_at_their_own_prefix(tmp_path):
    w = world(tmp_path, apps=())
    w.ray.app("extra", "/extra")
    w.ray.silent.add("/extra")
    checks = by_name(serve_checks(w.ctx.cluster))
    assert checks["app:extra"].ok and checks["http:extra"].detail == "GET /extra: no answer"


def test_replicas_stuck_longer_than_allowed_fail_with_rays_message(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello")
    w.ray.serve["hello"]["deployments"] = replicas("RUNNING", "PENDING_ALLOCATION")
    w.ray.serve["hello"]["deployments"]["D"]["message"] = "no node has 4 CPUs"
    checks = by_name(serve_checks(w.ctx.cluster, probe=False))
    assert not checks["replicas:hello"].ok
    assert "replica r1 of D is PENDING_ALLOCATION" in checks["replicas:hello"].detail
    assert checks["replicas:hello"].detail.endswith(": no node has 4 CPUs")


def test_a_dashboard_that_cannot_be_asked_fails_the_apps_the_config_keeps(tmp_path):
    w = world(tmp_path)
    w.ctx.store.kv.delete("cluster.layout")  # no recorded ports: no dashboard to ask
    [check] = serve_checks(w.ctx.cluster)
    assert (check.name, check.ok) == ("serve_apps", False)
    assert "no running head" in check.detail
    bare = world(tmp_path / "bare", apps=())
    bare.ctx.store.kv.delete("cluster.layout")
    assert serve_checks(bare.ctx.cluster) == []  # no app to keep: nothing failed


def test_a_replica_is_stuck_only_when_not_running_for_longer_than_the_threshold():
    app = {"deployments": {"D": {"message": " waiting for resources ", "replicas": [
        {"replica_id": "old", "state": "STARTING", "start_time_s": 100.0},
        {"replica_id": "young", "state": "STARTING", "start_time_s": 190.0},
        {"replica_id": "fine", "state": "RUNNING", "start_time_s": 0.0},
        {"replica_id": "unknown", "state": "STARTING"}]}}}
    assert stuck_replicas(app, threshold=60, now=200.0) == [
        "replica old of D is STARTING for 100s: waiting for resources"]
    assert stuck_replicas({}, threshold=60, now=200.0) == []


# -- serving, and serving again --------------------------------------------------------------------
def test_an_app_serves_when_it_and_every_replica_run(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello")
    w.ray.app("extra", "/extra")
    w.ray.app("slow", "/slow")
    w.ray.serve["slow"]["deployments"] = replicas("RUNNING", "STARTING")
    w.ray.app("broken", "/broken", status="UNHEALTHY")
    assert serving(w.ctx.cluster) == {"hello": "/hello", "extra": "/extra"}


def test_what_served_before_and_still_does_is_not_broken(tmp_path):
    w = world(tmp_path)
    w.ray.app("hello", "/hello")
    cluster, clock = on_a_fake_clock(w)
    assert still_serving(cluster, {"hello": "/hello"}, timeout=60) == []
    assert clock.slept == 0


def test_an_app_that_comes_back_within_the_wait_is_not_broken(tmp_path):
    w = world(tmp_path)
    cluster, clock = on_a_fake_clock(w)
    said = []

    def replicas_replaced(line):
        said.append(line)
        if len(said) == 3:  # a node left; Serve starts its replicas elsewhere
            w.ray.app("hello", "/hello")
    assert still_serving(cluster, {"hello": "/hello"}, timeout=60, on_wait=replicas_replaced) == []
    assert len(said) == 3 and clock.slept == 1.5  # tried every 0.5 s


def test_what_does_not_serve_again_within_the_wait_is_said(tmp_path):
    w = world(tmp_path)
    w.ray.app("extra", "/extra")
    w.ray.serve["extra"]["deployments"] = replicas("RUNNING", "STARTING")
    w.ray.serve["extra"]["message"] = "replica lost"
    w.ray.app("quiet", "/quiet")
    w.ray.silent.add("/quiet")
    cluster, clock = on_a_fake_clock(w)
    broken = still_serving(cluster, {"hello": "/hello", "extra": "/extra", "quiet": "/quiet"},
                           timeout=30)
    assert broken == ["extra no longer serves: RUNNING, replicas RUNNING, STARTING "
                      "(replica lost)",
                      "hello no longer serves: it is gone",
                      "quiet does not answer: GET /quiet: no answer"]
    assert clock.slept == 30


# -- all of them -----------------------------------------------------------------------------------
def test_health_only_checks_the_head_and_the_nodes(tmp_path):
    w = world(tmp_path)
    w.worker(1)
    w.worker(2)
    w.ray.app("hello", "/hello")
    assert [c.name for c in all_checks(w.ctx.cluster, health_only=True)] == ["head", "nodes_alive"]
    full = all_checks(w.ctx.cluster)
    assert [c.name for c in full] == ["head", "nodes_alive", "resources", "app:hello",
                                      "http:hello"]
    assert all(c.ok for c in full) and full[0].to_dict()["name"] == "head"

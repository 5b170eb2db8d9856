"""Small keyed facts (JSON values) and the records of the processes a local or ssh platform
started: apps, jobs and job runs, with their specs and what the platform records beyond the
common columns (the ssh platform's hosts) read back as data."""
import pytest

from store import Store
from tests.fakes import FakeClock


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "state", clock=FakeClock())


def app(app_id, name, created_at, **extra):
    return {"id": app_id, "name": name, "spec": {"cpu": 1, "env": {"A": "b"}}, "status": "running",
            "created_at": created_at, **extra}


def run(run_id, created_at, **extra):
    return {"id": run_id, "job_id": "job-1", "spec_hash": "h", "status": "running",
            "created_at": created_at, **extra}


def test_a_fact_is_kept_as_json_until_replaced_or_deleted(store):
    assert store.kv.get("layout") is None and store.kv.get("layout", {}) == {}
    store.kv.set("layout", {"port": 6379, "worker_ports": [26000, 26099]})
    assert store.kv.get("layout") == {"port": 6379, "worker_ports": [26000, 26099]}
    store.kv.set("layout", [1, "two"])
    assert store.kv.get("layout") == [1, "two"]
    store.kv.delete("layout")
    assert store.kv.get("layout", "gone") == "gone"


def test_falsy_facts_are_kept_not_taken_for_missing(store):
    for value in (0, False, "", [], None):
        store.kv.set("k", value)
        assert store.kv.get("k", "default") == value


def test_apps_read_back_with_their_spec_oldest_first_and_are_replaced_by_id(store):
    store.platform_records.put_app(app("a2", "rd-worker-1", 2.0, host="10.0.0.2"))
    store.platform_records.put_app(app("a1", "rd-head", 1.0, pid=42, pid_start="123"))
    assert [a["name"] for a in store.platform_records.apps()] == ["rd-head", "rd-worker-1"]
    head = store.platform_records.app("a1")
    assert head["spec"] == {"cpu": 1, "env": {"A": "b"}}
    assert (head["pid"], head["pid_start"], head["stopped_at"]) == (42, "123", None)
    assert "host" not in head  # a platform's own keys are the ones it gave
    store.platform_records.put_app(app("a1", "rd-head", 1.0, status="stopped", stopped_at=5.0))
    assert (store.platform_records.app("a1")["status"], len(store.platform_records.apps())) == \
        ("stopped", 2)
    store.platform_records.delete_app("a1")
    assert store.platform_records.app("a1") is None
    assert store.platform_records.app("a2")["host"] == "10.0.0.2"


def test_jobs_read_back_with_their_spec_oldest_first(store):
    for job_id, name, created in (("j2", "b", 2.0), ("j1", "a", 1.0)):
        store.platform_records.put_job({"id": job_id, "name": name, "spec": {"script": f"{name}.py"},
                                        "created_at": created, "updated_at": created})
    store.platform_records.put_job({"id": "j1", "name": "a", "spec": {"script": "new.py"},
                                    "created_at": 1.0, "updated_at": 9.0})
    jobs = store.platform_records.jobs()
    assert [(j["id"], j["spec"]["script"], j["updated_at"]) for j in jobs] == \
        [("j1", "new.py", 9.0), ("j2", "b.py", 2.0)]


def test_a_jobs_runs_read_back_newest_first_with_their_hosts(store):
    store.platform_records.put_run(run("r1", 1.0, exit_code=0, status="succeeded"))
    store.platform_records.put_run(run("r2", 2.0, hosts=["10.0.0.2", "10.0.0.3"]))
    store.platform_records.put_run(run("r3", 2.0))  # the same instant: the later one first
    store.platform_records.put_run({**run("other", 3.0), "job_id": "job-2"})
    assert [r["id"] for r in store.platform_records.runs("job-1")] == ["r3", "r2", "r1"]
    assert store.platform_records.run("r2")["hosts"] == ["10.0.0.2", "10.0.0.3"]
    assert "hosts" not in store.platform_records.run("r1")
    assert store.platform_records.run("r1")["exit_code"] == 0
    assert store.platform_records.run("missing") is None


def test_what_a_platform_records_of_its_own_is_read_back_as_it_gave_it(store):
    placed = {"host": "w1", "gpus": [0, 1], "labels": {"rack": "r2"}}
    store.platform_records.put_app(app("a1", "rd-worker-1", 1.0, **placed))
    assert {k: store.platform_records.app("a1")[k] for k in placed} == placed
    store.platform_records.put_app(app("a1", "rd-worker-1", 1.0))  # replaced: gone with it
    assert not set(placed) & set(store.platform_records.app("a1"))

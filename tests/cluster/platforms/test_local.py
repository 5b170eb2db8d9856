"""LocalPlatform with real processes (no Ray): apps, their records, stopping, adoption."""
import time

from cluster import processes
from cluster.platforms.local import LocalPlatform
from cluster.platforms.records import FAILED, RUNNING, STOPPED, AppSpec, JobSpec
from core.timing import poll_until
from store import Store


def platform(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "sleeper.py").write_text("import time\nwhile True: time.sleep(1)\n")
    (project / "fails.py").write_text("raise SystemExit(3)\n")
    (project / "job.py").write_text("import sys\nprint('job ran')\nsys.exit(int(sys.argv[1]))\n")
    return LocalPlatform(Store(tmp_path / "state"), project, tmp_path / "state")


def test_apps_get_their_own_loopback_address_and_a_later_process_can_stop_them(tmp_path):
    p = platform(tmp_path)
    a = p.create_app(AppSpec(name="a", script="sleeper.py", cpu=1, memory=1))
    b = p.create_app(AppSpec(name="b", script="sleeper.py", cpu=1, memory=1))
    try:
        assert a.ip != b.ip and a.ip.startswith("127.0.0.")
        assert p.create_app(AppSpec(name="a", script="sleeper.py", cpu=1, memory=1)).id == a.id
        later = LocalPlatform(Store(tmp_path / "state"), tmp_path / "project", tmp_path / "state")
        assert {x.name: x.status for x in later.list_apps()} == {"a": RUNNING, "b": RUNNING}
        later.stop_app(a.id, grace_seconds=1)
        assert later.get_app(a.id).status == STOPPED
        pid = p.store.platform_records.app(a.id)["pid"]
        assert not processes.session_alive(pid)
    finally:
        for app in p.list_apps():
            p.delete_app(app.id)
    assert p.list_apps() == []


def test_an_app_that_exits_is_failed(tmp_path):
    p = platform(tmp_path)
    app = p.create_app(AppSpec(name="f", script="fails.py", cpu=1, memory=1))
    poll_until(lambda: p.get_app(app.id).status == FAILED, 10, "the app to fail", interval=0.05)
    p.delete_app(app.id)


def test_an_app_whose_pid_was_never_recorded_is_adopted(tmp_path):
    p = platform(tmp_path)
    app = p.create_app(AppSpec(name="lost", script="sleeper.py", cpu=1, memory=1))
    record = p.store.platform_records.app(app.id)
    pid = record["pid"]
    try:
        record.update(pid=None, pid_start=None, status="starting", created_at=time.time() - 10)
        p.store.platform_records.put_app(record)  # as if the starter was killed before recording it
        assert p.get_app(app.id).status == RUNNING
        assert p.store.platform_records.app(app.id)["pid"] == pid
    finally:
        p.delete_app(app.id)
    assert not processes.session_alive(pid)


def test_job_runs_record_how_they_ended(tmp_path):
    p = platform(tmp_path)
    job = p.create_job(JobSpec(name="j", script="job.py", arguments="0"))
    ok = p.start_job_run(job.id, "key-1")
    bad_job = p.create_job(JobSpec(name="k", script="job.py", arguments="4"))
    bad = p.start_job_run(bad_job.id, "key-2")
    poll_until(lambda: p.get_job_run(job.id, ok.id).finished
               and p.get_job_run(bad_job.id, bad.id).finished, 20, "both runs to end",
               interval=0.05)
    assert p.get_job_run(job.id, ok.id).status == "succeeded"
    failed = p.get_job_run(bad_job.id, bad.id)
    assert (failed.status, failed.exit_code) == ("failed", 4)
    assert "job ran" in p.job_run_log(ok.id)


def test_a_process_whose_record_cannot_be_written_is_stopped(tmp_path, monkeypatch):
    p = platform(tmp_path)
    started = []
    real_start_time = processes.start_time

    def start_time(pid):
        started.append(pid)
        raise OSError("the store's disk is full")  # after Popen, before the record says so
    monkeypatch.setattr(processes, "start_time", start_time)
    try:
        p.create_app(AppSpec(name="lost", script="sleeper.py", cpu=1, memory=1))
        raise AssertionError("create_app did not fail")
    except OSError:
        pass
    monkeypatch.setattr(processes, "start_time", real_start_time)
    [pid] = started
    alive = processes.session_alive(pid)
    if alive:  # the test fails, and leaves nothing behind
        processes.stop_session(pid, grace_seconds=1)
    assert not alive

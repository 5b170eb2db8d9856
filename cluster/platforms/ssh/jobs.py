"""The ssh platform's environment jobs: a job run is the job's script run on every host at
once (each under cluster/job_runner.py, which writes how it ended in the run's directory on
that host), and it succeeded when it succeeded on every host. Jobs and runs are records in
the store; a run's processes are found and stopped by their pid and start time."""
from __future__ import annotations

import shlex
import time
from dataclasses import asdict

from cluster.platforms.base import Job, JobRun, JobSpec, PlatformError
from cluster.platforms.ssh.runner import Process, SSHError
from core import crashpoints
from core.errors import NotFound
from store import new_id

RUNNER = "cluster/job_runner.py"


class SSHJobs:
    """Mixed into SSHPlatform (its hosts, runner, store and remote directories)."""

    def list_jobs(self) -> list[Job]:
        return [Job(id=r["id"], name=r["name"], spec=JobSpec(**r["spec"]))
                for r in self.store.platform_records.jobs()]

    def create_job(self, spec: JobSpec, parent_id: str | None = None) -> Job:
        now = time.time()
        self.store.platform_records.put_job({"id": (job_id := new_id("job")), "name": spec.name,
                                             "spec": asdict(spec), "created_at": now,
                                             "updated_at": now})
        crashpoints.wrote()
        return Job(id=job_id, name=spec.name, spec=spec)

    def update_job(self, job_id: str, spec: JobSpec, parent_id: str | None = None) -> Job:
        current = next((j for j in self.store.platform_records.jobs() if j["id"] == job_id), None)
        if current is None:
            raise NotFound(f"job {job_id} not found")
        current.update(spec=asdict(spec), updated_at=time.time())
        self.store.platform_records.put_job(current)
        crashpoints.wrote()
        return Job(id=job_id, name=spec.name, spec=spec)

    def start_job_run(self, job_id: str, spec_hash: str) -> JobRun:
        job = next((j for j in self.list_jobs() if j.id == job_id), None)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        self._each(self._push)  # the project as it is now, on every host
        run_id, spec, python = new_id("jobrun"), job.spec, self.settings.python

        def start(host) -> tuple[str, dict]:
            remote = self.remote(host)
            run_dir = f"{remote.runs}/{run_id}"
            env = {**spec.environment, "RAYDEPLOY_PROJECT_FILES": remote.files,
                   "RAYDEPLOY_NODE_ADDRESS": host.address}
            if self.settings.wheelhouse:
                env["PIP_FIND_LINKS"] = remote.wheelhouse
            argv = [python, RUNNER, run_dir, str(spec.timeout), "--", python, spec.script,
                    *shlex.split(spec.arguments)]
            try:
                started = self.runner.start(self.login(host), argv, log=f"{run_dir}/runner.log",
                                            env=env, cwd=remote.project)
            except SSHError as e:
                raise PlatformError(f"could not run job {spec.name} on {host.name}: {e}") from None
            return host.name, {"pid": started.pid, "start": started.start, "dir": run_dir}
        record = {"id": run_id, "job_id": job_id, "spec_hash": spec_hash, "status": "running",
                  "hosts": dict(self._each(start)), "created_at": time.time()}
        self.store.platform_records.put_run(record)
        crashpoints.wrote()
        return self._job_run(record)

    def get_job_run(self, job_id: str, run_id: str) -> JobRun:
        record = self.store.platform_records.run(run_id)
        if record is None or record["job_id"] != job_id:
            raise NotFound(f"job run {run_id} of job {job_id} not found")
        return self._job_run(record)

    def job_runs(self, job_id: str) -> list[JobRun]:
        return [self._job_run(r) for r in self.store.platform_records.runs(job_id)]

    def job_run_log(self, run_id: str) -> str:
        """The end of each host's output, under the host's name."""
        record = self.store.platform_records.run(run_id)
        if record is None:
            return ""

        def tail(host) -> str:
            where = record["hosts"].get(host.name)
            if where is None:
                return ""
            try:
                out = self._run(host, ["tail", "-c", "1500", f"{where['dir']}/output.log"]).stdout
            except PlatformError as e:
                out = str(e)
            return f"[{host.name}]\n{out.strip()}"
        return "\n".join(t for t in self._each(tail, [h for h in self.hosts
                                                      if h.name in record["hosts"]]) if t)

    def _job_run(self, record: dict) -> JobRun:
        if record["status"] == "running":
            self._settle(record)
        return JobRun(id=record["id"], job_id=record["job_id"], status=record["status"],
                      spec_hash=record["spec_hash"], exit_code=record.get("exit_code"),
                      created_at=record["created_at"])

    def _settle(self, record: dict) -> None:
        """Ask every host of a running run how its part ended; record the run's end once
        every part ended (the first part that did not succeed is the run's status)."""
        hosts = [h for h in self.hosts if h.name in record["hosts"]]

        def ask(host) -> tuple[str, int | None] | None:
            where = record["hosts"][host.name]
            try:
                answer = self.runner.results(self.login(host), [
                    (where["dir"], Process(host.name, where["pid"], where["start"]))])[0]
            except SSHError:
                return None  # not known now: asked again next time
            if answer["result"]:
                status, _, code = answer["result"].partition(" ")
                return status, int(code)
            return None if answer["alive"] else ("failed", None)  # died without a result
        ended = self._each(ask, hosts)
        if len(hosts) < len(record["hosts"]) or any(e is None for e in ended):
            return
        failed = next((e for e in ended if e[0] != "succeeded"), None)
        status, code = failed or ("succeeded", 0)
        record.update(status=status, exit_code=code, finished_at=time.time())
        self.store.platform_records.put_run(record)

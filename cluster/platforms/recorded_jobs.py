"""Jobs and job runs as records in the store, for platforms that have no jobs of their own
(CML has; the local and ssh platforms keep them here). The platform starts a run's
process(es) and says how a running run ended; the records, their lookups and the run's
shape are this mixin's, written once."""
from __future__ import annotations

import time
from dataclasses import asdict

from cluster.platforms.records import Job, JobRun, JobSpec
from core import crashpoints
from core.errors import NotFound
from store import new_id


class RecordedJobs:
    """Mixed into a Platform with a ``store``; it implements ``_start_run`` and ``_settle``."""
    has_jobs = True

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
        record = {"id": new_id("jobrun"), "job_id": job_id, "spec_hash": spec_hash,
                  "status": "running", "created_at": time.time()}
        record.update(self._start_run(job.spec, record["id"]))
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

    def _job_run(self, record: dict) -> JobRun:
        if record["status"] == "running":
            ended = self._settle(record)
            if ended is not None:
                status, code = ended
                record.update(status=status, exit_code=code, finished_at=time.time())
                self.store.platform_records.put_run(record)
        return JobRun(id=record["id"], job_id=record["job_id"], status=record["status"],
                      spec_hash=record["spec_hash"], exit_code=record.get("exit_code"),
                      created_at=record["created_at"])

    # -- what the platform does ----------------------------------------------------------------
    def _start_run(self, spec: JobSpec, run_id: str) -> dict:
        """Start run ``run_id`` of a job with ``spec``; what to record of its process(es)."""
        raise NotImplementedError

    def _settle(self, record: dict) -> tuple[str, int | None] | None:
        """(status, exit code) of a running run that ended; None while it runs (or is not
        known now)."""
        raise NotImplementedError

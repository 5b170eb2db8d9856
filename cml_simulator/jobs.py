"""Jobs and job runs of the simulated workspace (a mixin of Workspace, see state.py).

A run is a real local process, started at once; its reported status walks CML's states
SCHEDULING -> STARTING -> RUNNING -> terminal, and the time each state is first reached is
recorded once (``scheduling_at``, ``starting_at``, ``running_at``, ``finished_at``). A child
job (``parent_id``) is of type "dependent" and starts when a run of its parent succeeds.
"""
from __future__ import annotations

import json
import time

from cluster.platforms.records import JobSpec
from cml_simulator.common import (
    USER,
    SimError,
    apply_patch,
    check_runtime,
    cml_id,
    now_iso,
    patched_environment,
    to_int,
)

RUN_STATUS = {"running": "ENGINE_RUNNING", "succeeded": "ENGINE_SUCCEEDED",
              "failed": "ENGINE_FAILED", "timedout": "ENGINE_TIMEDOUT", "stopped": "ENGINE_STOPPED"}
RUN_TERMINAL = {"ENGINE_SUCCEEDED", "ENGINE_FAILED", "ENGINE_TIMEDOUT", "ENGINE_STOPPED",
                "ENGINE_SKIPPED", "ENGINE_UNKNOWN"}  # UNKNOWN: a local status we cannot name
# (state, seconds after the run was created when it is reached, status)
RUN_PHASES = (("scheduling", 0.0, "ENGINE_SCHEDULING"), ("starting", 0.2, "ENGINE_STARTING"),
              ("running", 0.4, "ENGINE_RUNNING"))
JOB_PATCH = {"name": str, "script": str, "arguments": str, "cpu": float, "memory": float,
             "nvidia_gpu": to_int, "timeout": to_int, "kill_on_timeout": bool,
             "runtime_identifier": str, "parent_id": str}


class JobsMixin:
    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, project_id: str, body: dict) -> dict:
        project = self.project(project_id)
        for key in ("name", "script"):
            if not body.get(key):
                raise SimError(400, f"{key} is required")
        runtime = check_runtime(body.get("runtime_identifier"), project.engine_type,
                                f"job {body['name']!r}")
        parent = body.get("parent_id") or body.get("parent_job_id") or ""
        self._check_parent(project_id, parent)
        with self.lock:
            now = time.time()
            record = {"id": cml_id(), "project_id": project_id, "name": body["name"],
                      "script": body["script"], "arguments": body.get("arguments") or "",
                      "cpu": float(body.get("cpu") or 1), "memory": float(body.get("memory") or 1),
                      "nvidia_gpu": to_int(body.get("nvidia_gpu") or 0),
                      "timeout": to_int(body.get("timeout") or 0), "parent_id": parent,
                      "environment": dict(body.get("environment") or {}),
                      "runtime_identifier": runtime,
                      "kill_on_timeout": bool(body.get("kill_on_timeout", False)),
                      "created_at": now, "updated_at": now}
            record["local_id"] = project.platform.create_job(self._local_job_spec(record)).id
            self.jobs[record["id"]] = record
        return self.job_api(record)

    def _check_parent(self, project_id: str, parent: str, job_id: str | None = None) -> None:
        if not parent:
            return
        found = self.jobs.get(parent)
        if found is None or found["project_id"] != project_id:
            raise SimError(404, f"parent job {parent} not found")
        if parent == job_id:
            raise SimError(400, "a job cannot be its own parent")

    def _local_job_spec(self, record: dict, extra_env: dict | None = None) -> JobSpec:
        env = {**self.project(record["project_id"]).environment, **record["environment"],
               **(extra_env or {})}
        return JobSpec(name=record["name"], script=record["script"], arguments=record["arguments"],
                       cpu=record["cpu"], memory=record["memory"],
                       timeout=record["timeout"] or 86400, environment=env)

    def job(self, project_id: str, job_id: str) -> dict:
        record = self.jobs.get(job_id)
        if record is None or record["project_id"] != project_id:
            raise SimError(404, f"job {job_id} not found")
        return record

    def delete_job(self, project_id: str, job_id: str) -> None:
        self.job(project_id, job_id)
        self.forget_jobs([job_id])

    def forget_jobs(self, job_ids: list[str]) -> None:
        """Drop jobs and their runs' records (a run still going ends by itself)."""
        with self.lock:
            for job_id in job_ids:
                self.jobs.pop(job_id, None)
            for run_id in [r for r, run in self.runs.items() if run["job_id"] in job_ids]:
                self.runs.pop(run_id)

    def update_job(self, project_id: str, job_id: str, body: dict) -> dict:
        """PATCH: the fields the body carries are set, ``environment`` replaced as a whole."""
        record = self.job(project_id, job_id)
        project = self.project(project_id)
        if body.get("runtime_identifier"):
            check_runtime(body["runtime_identifier"], project.engine_type, f"job {record['name']!r}")
        if body.get("parent_id"):
            self._check_parent(project_id, body["parent_id"], job_id)
        env = patched_environment(body)
        with self.lock:
            apply_patch(record, body, JOB_PATCH)
            if env is not None:
                record["environment"] = env
            record["updated_at"] = time.time()
            project.platform.update_job(record["local_id"], self._local_job_spec(record))
        return self.job_api(record)

    def job_api(self, r: dict) -> dict:
        project = self.projects.get(r["project_id"])
        short = {"public_identifier": r["project_id"]}
        if project is not None:
            short.update(name=project.name, slug=project.slug,
                         default_project_engine=project.engine_type)
        return {"id": r["id"], "name": r["name"], "script": r["script"], "arguments": r["arguments"],
                "cpu": r["cpu"], "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"],
                "timeout": str(r["timeout"]), "parent_id": r["parent_id"],
                "environment": json.dumps(r["environment"]),
                "type": "dependent" if r["parent_id"] else "manual",
                "runtime_identifier": r["runtime_identifier"], "kill_on_timeout": r["kill_on_timeout"],
                "created_at": now_iso(r["created_at"]), "updated_at": now_iso(r["updated_at"]),
                "project": short, "creator": dict(USER), "owner": dict(USER)}

    # -- job runs -------------------------------------------------------------------------
    def start_run(self, project_id: str, job_id: str, body: dict | None = None) -> dict:
        job = self.job(project_id, job_id)
        platform = self.project(project_id).platform
        overrides = dict((body or {}).get("environment") or {})
        env = {**self.project(project_id).environment, **job["environment"], **overrides}
        with self.lock:
            if overrides:  # the local platform runs a job's own spec: lend it this run's env
                platform.update_job(job["local_id"], self._local_job_spec(job, overrides))
            local = platform.start_job_run(job["local_id"], spec_hash="sim")
            if overrides:
                platform.update_job(job["local_id"], self._local_job_spec(job))
            run_id = cml_id()
            # cpu, memory, ... are the job's at the start: a later edit of the job keeps them
            self.runs[run_id] = {"id": run_id, "job_id": job_id, "project_id": project_id,
                                 "local_id": local.id, "environment": env,
                                 "created_at": time.time(), "final": None, "chained": False,
                                 "at": {}, "arguments": (body or {}).get("arguments") or job["arguments"],
                                 **{k: job[k] for k in ("cpu", "memory", "nvidia_gpu",
                                                        "runtime_identifier")}}
        return self.run_api(self.runs[run_id])

    def run(self, project_id: str, job_id: str, run_id: str) -> dict:
        record = self.runs.get(run_id)
        if record is None or record["job_id"] != job_id or record["project_id"] != project_id:
            raise SimError(404, f"job run {run_id} not found")
        return record

    def run_status(self, record: dict) -> str:
        """The run's status now; the first time it is seen in a state, that state's time is
        recorded (never changed afterwards)."""
        with self.lock:
            if record["final"]:
                return record["final"]
            age = time.time() - record["created_at"]
            reached = [phase for phase in RUN_PHASES if age >= phase[1]]
            for name, offset, _ in reached:
                record["at"].setdefault(name, record["created_at"] + offset)
            if len(reached) < len(RUN_PHASES):
                return reached[-1][2]
            local = self.project(record["project_id"]).platform.get_job_run(
                self.jobs[record["job_id"]]["local_id"], record["local_id"])
            if local.status == "running":
                return "ENGINE_RUNNING"
            return self._finish(record, RUN_STATUS.get(local.status, "ENGINE_UNKNOWN"))

    def _finish(self, record: dict, status: str) -> str:
        record["final"] = status
        record["at"].setdefault("finished", time.time())
        return status

    def stop_run(self, project_id: str, job_id: str, run_id: str) -> dict:
        record = self.run(project_id, job_id, run_id)
        with self.lock:
            if self.run_status(record) in RUN_TERMINAL:
                return self.run_api(record)  # already over: stopping changes nothing
            self._finish(record, "ENGINE_STOPPED")  # before the kill: not seen as "failed"
        local = self.project(project_id).platform.store.platform_records.run(record["local_id"])
        from cluster import processes
        if local and local.get("pid") and processes.is_ours(local["pid"], local["pid_start"]):
            processes.stop_session(local["pid"], grace_seconds=1)
        return self.run_api(record)

    def run_api(self, r: dict) -> dict:
        status = self.run_status(r)
        out = {"id": r["id"], "job_id": r["job_id"], "project_id": r["project_id"],
               "status": status, "created_at": now_iso(r["created_at"]),
               "environment": json.dumps(r["environment"]), "arguments": r["arguments"],
               "cpu": r["cpu"], "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"],
               "runtime_identifier": r["runtime_identifier"], "creator": dict(USER)}
        for state, at in r["at"].items():  # only the states reached so far
            out[f"{state}_at"] = now_iso(at)
        return out

    def _chain_loop(self) -> None:
        """Watch unfinished runs (so ``finished_at`` is the time a run ended, not the time it
        was asked about) and start a child job when its parent's run succeeds, as in CML."""
        while not self._stop.wait(0.2):
            for run in list(self.runs.values()):
                if run["chained"] or run["project_id"] not in self.projects:
                    continue
                try:
                    status = self.run_status(run)
                except Exception:
                    continue
                if status in RUN_TERMINAL:
                    run["chained"] = True
                    if status == "ENGINE_SUCCEEDED":
                        for child in [j for j in self.jobs.values() if j["parent_id"] == run["job_id"]]:
                            self.start_run(child["project_id"], child["id"])


"""The ssh platform's environment jobs: a job run is the job's script run on every host at
once (each under cluster/job_runner.py, which writes how it ended in the run's directory on
that host), and it succeeded when it succeeded on every host. Jobs and runs are records in
the store (``RecordedJobs``); a run's processes are found by their pid and start time."""
from __future__ import annotations

import shlex

from cluster.platforms.base import PlatformError
from cluster.platforms.recorded_jobs import RecordedJobs
from cluster.platforms.records import JobSpec
from cluster.platforms.ssh.runner import Process, SSHError

RUNNER = "cluster/job_runner.py"


class SSHJobs(RecordedJobs):
    """Mixed into SSHPlatform (its hosts, runner, store and remote directories)."""

    def _start_run(self, spec: JobSpec, run_id: str) -> dict:
        self._each(self._push)  # the project as it is now, on every host
        python = self.settings.python

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
        return {"hosts": dict(self._each(start))}

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

    def _settle(self, record: dict) -> tuple[str, int | None] | None:
        """Ask every host of a running run how its part ended: ended once every part ended
        (the first part that did not succeed is the run's status)."""
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
            return None
        return next((e for e in ended if e[0] != "succeeded"), ("succeeded", 0))

"""The cluster is usable, not only up: a Ray job submitted as its users submit theirs (the
Jobs API, the cluster's token, entrypoint ``python``) runs a task on every ALIVE node and
returns. It fails naming each node that took no task, or with the end of the job's log when
the driver itself fails (``No module named 'ray'``: the nodes' ``python`` is not Ray's), or
when a task holds a secret (``launcher.OWN_SECRETS`` and the platform's ``secret_env``).
Its answer is the driver's result line, read as soon as it is printed. A job that did not
answer is stopped; ended jobs of earlier checks are removed (see ``_sweep``): a cluster's
job list holds the last check's job, at most.

A deploy starts it ahead (``ahead``), as soon as the cluster has its nodes, so the driver
runs while Serve deploys; its pass is remembered for the nodes it ran on, as every pass
is, and validation stands on it while the same nodes are ALIVE."""
from __future__ import annotations

import base64
import json
import threading
import uuid

from cluster.health import Check
from cluster.launcher import OWN_SECRETS
from core.errors import DomainError
from core.timing import TimedOut, poll_until

TASK_SECONDS = 30.0  # for every node to run its task (a node starts a worker process for it)
JOB_SECONDS = 60.0  # for the driver's start, besides the tasks' time
MARK = "RAYDEPLOY_NODES "
PROVEN_KEY = "validation.ray_job"  # the nodes the last passing job ran on, and when
REUSE_SECONDS = 600.0
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
PREFIX = "raydeploy-validation-"  # the submission id of every validation job
SETTLE_SECONDS = 10.0  # after its end, a validation job is deleted by a later check

# what the job runs: a zero-CPU task pinned to each ALIVE node (it runs however busy the
# node is with Serve replicas), then one line naming the nodes that answered
DRIVER = """\
import json, os, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init()
@ray.remote(num_cpus=0)
def where():
    return ray.get_runtime_context().get_node_id(), [s for s in SECRETS if s in os.environ]
alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in alive]
done, _ = ray.wait(refs, num_returns=len(refs), timeout=TASK_SECONDS)
answers = ray.get(done)
print(MARK + json.dumps({"alive": alive, "answered": sorted({n for n, _ in answers}),
                         "secrets": sorted({s for _, held in answers for s in held})}), flush=True)
"""


def entrypoint(task_seconds: float = TASK_SECONDS, secrets: tuple[str, ...] = ()) -> str:
    """``python -c ...`` with the driver encoded, so no shell quoting can break it."""
    driver = (f"TASK_SECONDS = {float(task_seconds)!r}\nMARK = {MARK!r}\n"
              f"SECRETS = {[*OWN_SECRETS, *secrets]!r}\n" + DRIVER)
    code = base64.b64encode(driver.encode()).decode()
    return f"python -c \"import base64; exec(base64.b64decode('{code}'))\""


def job_check(cluster, task_seconds: float = TASK_SECONDS, reuse: bool = False) -> Check:
    """``reuse``: a job that passed on exactly the nodes ALIVE now, less than
    ``REUSE_SECONDS`` ago, stands (a deploy's re-run on a healthy cluster stays fast; a node
    that changed, or ``python -m validation``, runs one again)."""
    return submit(cluster, task_seconds, reuse)()


def ahead(cluster):
    """Start the job in the background for a check to come (a deploy's validation, while
    the checkpoints before it run) once every configured node is ALIVE and no pass stands
    for them; returns the wait for it, or None when nothing was started. Its pass is
    remembered (``reuse`` stands on it); a failure is not reported here: the check to come
    runs a job of its own then, and says what it found."""
    try:
        client = cluster.inventory.dashboard()
        alive = _alive(client)
    except DomainError:
        return None
    if len(alive) < cluster.config.workers.count + 1 or _still_proven(cluster, client, alive):
        return None
    wait = submit(cluster)
    thread = threading.Thread(target=wait, name="validation-job-ahead", daemon=True)
    thread.start()
    return thread.join


def submit(cluster, task_seconds: float = TASK_SECONDS, reuse: bool = False, after=None):
    """Submit the job (what ``job_check`` does, in two halves: other checks run while the
    job's driver starts); returns the function that waits for its check. ``after``: a job
    started ``ahead``, waited for first (with ``reuse``, its pass stands)."""
    if after is not None:
        def when_it_ended() -> Check:
            after()
            return submit(cluster, task_seconds, reuse)()
        return when_it_ended
    try:
        client = cluster.inventory.dashboard()
    except DomainError as e:
        return _known(Check("ray_job", False, str(e)))
    if reuse:
        proven = _still_proven(cluster, client)
        if proven is not None:
            return _known(proven)
    _sweep(client, cluster.clock.time())
    job_id = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        client.submit_job(entrypoint(task_seconds, cluster.platform.secret_env), job_id,
                          {"raydeploy": "validation"})
    except DomainError as e:
        return _known(Check("ray_job", False, f"the Jobs API refused a job: {e}"))

    def result() -> Check:
        state: dict = {}
        try:
            check = _outcome(cluster, client, job_id, task_seconds, state)
        finally:
            if "logs" not in state:
                _stop_unanswered(client, job_id)
        if not check.ok:  # a pass of before stands no more
            cluster.store.kv.delete(PROVEN_KEY)
        return check
    return result


def _known(check: Check):
    return lambda: check


def _outcome(cluster, client, job_id: str, task_seconds: float, state: dict) -> Check:
    """The job's check, as soon as its driver printed its result line (the job then ends by
    itself: its driver's shutdown is no part of the answer), or it ended without one."""
    def answered() -> bool:
        state.update(client.job(job_id))
        if state.get("status") == "RUNNING":
            logs = client.job_logs(job_id)
            if _result_line(logs) is not None:
                state["logs"] = logs
                return True
        return state.get("status") in ENDED
    try:
        poll_until(answered, JOB_SECONDS + task_seconds, f"Ray job {job_id} to answer",
                   clock=cluster.clock, interval=0.1)
    except TimedOut:
        return Check("ray_job", False, f"job {job_id} still {state.get('status')} after "
                                       f"{JOB_SECONDS + task_seconds:.0f}s{_log_tail(client, job_id)}")
    if "logs" not in state and state["status"] != "SUCCEEDED":
        return Check("ray_job", False, f"job {job_id} {state['status']}: "
                                       f"{(state.get('message') or '').strip()[:200]}"
                                       f"{_log_tail(client, job_id)}")
    logs = state.get("logs") or client.job_logs(job_id)
    line = _result_line(logs)
    if line is None:
        return Check("ray_job", False, f"job {job_id} printed no result{_log_tail(client, job_id)}")
    result = json.loads(line[len(MARK):])
    silent = [n for n in result["alive"] if n not in result["answered"]]
    if silent:
        return Check("ray_job", False, f"no task ran within {task_seconds:.0f}s on "
                                       f"{', '.join(_names(cluster, silent))}")
    if result.get("secrets"):  # the launcher keeps them from every Ray process
        return Check("ray_job", False, f"the cluster's tasks hold {', '.join(result['secrets'])}")
    cluster.store.kv.set(PROVEN_KEY, {"nodes": sorted(result["alive"]), "at": cluster.clock.time(),
                                      "job": job_id})
    return Check("ray_job", True, f"a Ray job (entrypoint python, the cluster's token) ran a "
                                  f"task on each of the {len(result['alive'])} nodes")


def _result_line(logs: str) -> str | None:
    """The driver's result line (a whole line: the driver printed it, and flushed)."""
    return next((ln for ln in logs.splitlines(keepends=True)
                 if ln.startswith(MARK) and ln.endswith("\n")), None)


def _alive(client) -> list[str]:
    """Ray's ALIVE nodes (as the job's driver sees them: the dashboard's list, no platform
    listing), their ids in order."""
    return sorted(n["node_id"] for n in client.nodes() if n.get("state") == "ALIVE")


def _still_proven(cluster, client, alive: list[str] | None = None) -> Check | None:
    """The last pass, if Ray's ALIVE nodes (``alive``, else asked) are the same ones now."""
    proven = cluster.store.kv.get(PROVEN_KEY)
    if not proven:
        return None
    age = cluster.clock.time() - proven["at"]
    try:
        alive = _alive(client) if alive is None else alive
    except DomainError:
        return None
    if alive != proven["nodes"] or not 0 <= age < REUSE_SECONDS:
        return None
    return Check("ray_job", True, f"a Ray job ({proven.get('job', 'of an earlier check')}) ran a "
                                  f"task on each of the {len(alive)} nodes {age:.0f}s ago; the "
                                  f"same nodes are ALIVE now (not run again)")


def _names(cluster, node_ids: list[str]) -> list[str]:
    """Ray node ids as the user knows the nodes: the platform app and its address."""
    try:
        known = {n.node_id: n for n in cluster.inventory.nodes()}
    except DomainError:
        known = {}
    out = []
    for node_id in node_ids:
        node = known.get(node_id)
        out.append(f"{node.platform_app_name or node_id} ({node.node_ip})" if node else node_id)
    return out


def _log_tail(client, job_id: str) -> str:
    try:
        lines = [ln for ln in client.job_logs(job_id).splitlines() if ln.strip()]
    except DomainError:
        return ""
    return ("; its log ends: " + " | ".join(lines[-3:])[-400:]) if lines else ""


def _stop_unanswered(client, job_id: str) -> None:
    """A job that did not answer is stopped (one that answered ends by itself)."""
    try:
        if client.job(job_id).get("status") not in ENDED:
            client.stop_job(job_id)
    except DomainError:
        pass  # it is named by its id and metadata, and swept once ended


def _sweep(client, now: float) -> None:
    """Forget the validation jobs of before that ended at least ``SETTLE_SECONDS`` ago:
    Ray writes a job deleted as it ends back as FAILED ("Job supervisor actor died",
    ray-project/ray#65251), so none is deleted by the check that ran it."""
    try:
        for job in client.jobs():
            ended_ms = job.get("end_time")
            if str(job.get("submission_id") or "").startswith(PREFIX) and \
                    job.get("status") in ENDED and \
                    (ended_ms is None or now - ended_ms / 1000 >= SETTLE_SECONDS):
                client.delete_job(job["submission_id"])
    except DomainError:
        pass

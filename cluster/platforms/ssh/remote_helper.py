"""What the ssh platform's runner runs on a host (``python3 -``: this file's text is sent on
stdin by cluster/platforms/ssh/runner.py, after a line ``REQUEST = '<json>'``, so no request
is ever on a command line; nothing is installed there): one request (JSON) in, one answer
(JSON) out.

    start       a process in a session of its own, its output appended to a log: pid, start
    alive       whether each recorded session still runs (the pid still the process started)
    find        the session leader whose environment holds key=value (a lost record)
    results     how job runs ended (cluster/job_runner.py's result file), or whether they run
    survey      Ray's processes on the host's network, whoever started them, and ports taken
    stop        a recorded session: TERM, then KILL after the grace time
    stop_each   exactly the processes given (each still the one seen), nothing else
    files       the text of a directory's files with a suffix (Ray's Grafana dashboards)
    run         a short command, waited for: its exit code (None: killed at its timeout)
                and the last ``keep`` characters of its output (``python`` first:
                the first interpreter given that is there)

The standard library only (the host's own python3 runs it). Its waits sleep here, on the
host: it is no part of the control plane's process (tests/test_architecture.py knows).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

RAY_BINARIES = ("raylet", "gcs_server", "plasma_store")


def started(pid):
    """The kernel's start time of a live process (None: gone, or a zombie nobody reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def ours(record):
    """The pid is still the process recorded (its start time)."""
    return bool(record.get("pid")) and started(record["pid"]) == record.get("start")


def members(sid):
    """Every live process of session ``sid`` (Ray's workers sit in groups of their own,
    but stay in the node's session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) == sid:
                found.append(int(entry))
    return found


def owned(record):
    """The session it started still runs: its leader is the process recorded, or the
    leader is gone and members of its session are left (the pid names the session)."""
    if not record.get("pid"):
        return False
    now = started(record["pid"])
    return (now == record.get("start") or now is None) and bool(members(record["pid"]))


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def wait_until(done, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(step)


def start(request):
    log_path = os.path.expanduser(request["log"])
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(request["argv"], cwd=os.path.expanduser(request.get("cwd") or "~"),
                                env={**os.environ, **request.get("env", {})},
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return {"pid": proc.pid, "start": started(proc.pid)}


def alive(request):
    return {"alive": [owned(r) for r in request["records"]]}


def find(request):
    needle = f"{request['key']}={request['value']}".encode()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getsid(int(entry)) == int(entry):
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        return {"found": {"pid": int(entry), "start": started(entry)}}
        except OSError:
            continue
    return {"found": None}


def results(request):
    answers = []
    for run in request["runs"]:
        try:
            with open(os.path.join(os.path.expanduser(run["dir"]), "result")) as f:
                answers.append({"result": f.read().strip()})
        except OSError:
            answers.append({"result": None, "alive": owned(run["record"])})
    return {"runs": answers}


def is_ray(argv):
    text = " ".join(argv)
    return bool(argv) and (os.path.basename(argv[0]) in RAY_BINARIES
                           or "ray.scripts.scripts" in text or text.startswith("ray::")
                           or any(os.path.basename(a) == "ray" for a in argv[:2]))


def survey(request):
    """Ray's processes on this host's network (a container's own network is another host),
    whoever started them, which of the ports something listens on, and ``alive`` of the
    records given (what ``alive`` answers, in the same round trip)."""
    mine, network = {os.getpid(), os.getppid()}, os.stat("/proc/self/ns/net").st_ino
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino != network:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            if is_ray(argv):
                found.append({"pid": int(entry), "start": started(entry),
                              "command": " ".join(argv)[:200], "sid": os.getsid(int(entry))})
        except OSError:
            continue
    taken = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and port in request["ports"]:  # LISTEN
                taken.add(port)
    return {"ray": found, "taken": sorted(taken),
            "alive": [owned(r) for r in request.get("records", [])]}


def stop(request):
    record = request["record"]
    if not owned(record):
        return {"stopped": False, "why": "not running (or not the process it started)"}
    sid = record["pid"]
    signal_all(members(sid), signal.SIGTERM)
    wait_until(lambda: not members(sid), request.get("grace", 5))
    signal_all(members(sid), signal.SIGKILL)
    wait_until(lambda: not members(sid), 5, 0.05)
    return {"stopped": True}


def stop_each(request):
    records = [r for r in request["records"] if ours(r)]
    signal_all([r["pid"] for r in records], signal.SIGTERM)
    wait_until(lambda: not any(ours(r) for r in records), request.get("grace", 5))
    signal_all([r["pid"] for r in records if ours(r)], signal.SIGKILL)
    return {"stopped": [r["pid"] for r in records]}


def files(request):
    """The text of each file of a directory whose name ends with the suffix (none: {})."""
    directory, found = os.path.expanduser(request["dir"]), {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {"files": found}
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(request["suffix"]) and os.path.isfile(path):
            with open(path, errors="replace") as f:
                found[name] = f.read()
    return {"files": found}


def run(request):
    argv = request["argv"]
    if argv[:1] == ["python"]:  # the first of the interpreters given that is there
        found = [shutil.which(os.path.expanduser(p)) for p in request.get("python", ())]
        argv = [next((p for p in found if p), sys.executable), *argv[1:]]
    try:
        done = subprocess.run(argv, cwd=os.path.expanduser(request.get("cwd") or "~"),
                              env={**os.environ, **request.get("env", {})},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=request["timeout"])
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return {"code": None, "output": out[-request["keep"]:]}
    except OSError as e:
        return {"code": 127, "output": f"{argv[0]}: {e.strerror}"}
    return {"code": done.returncode, "output": done.stdout.decode(errors="replace")[-request["keep"]:]}


COMMANDS = {"start": start, "run": run, "alive": alive, "find": find, "results": results,
            "survey": survey, "stop": stop, "stop_each": stop_each, "files": files}


def main():
    request = json.loads(REQUEST)  # noqa: F821 (the line the runner puts before this file)
    sys.stdout.write(json.dumps(COMMANDS[request["do"]](request)) + "\n")


if __name__ == "__main__":
    main()

"""The anchor of a lab host (run as a script, stdlib only): started in the host's network
namespace, it makes the host's mount namespace private, mounts empty tmpfs over the
private points (``/tmp``, ``/home``, ``$HOME``, ``/dev/shm``), binds in what the host is
given (and what must stay visible at the same path: the interpreter, the checkout), says
``ready`` and sleeps for ever, holding the mounts for every process that enters the host.

    python lab/anchor.py '{"tmpfs": [...], "binds": [[target, source], ...]}'

Sources are opened before anything is mounted over them and bound from the open
descriptor (``/proc/<pid>/fd/<n>``, not canonicalized): a directory under ``/tmp`` stays
bindable after ``/tmp`` is hidden by the host's own tmpfs.
"""
import json
import os
import subprocess
import sys

STICKY = ("/tmp", "/dev/shm", "/var/tmp")  # writable by everyone, like the real ones


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, stdin=subprocess.DEVNULL)


def main() -> int:
    spec = json.loads(sys.argv[1])
    mount("--make-rprivate", "/")  # nothing mounted here reaches the root namespace
    opened = []
    for target, source in spec["binds"]:
        is_dir = os.path.isdir(source)
        fd = os.open(source, os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0))
        opened.append((target, fd, is_dir))
    for point in spec["tmpfs"]:
        os.makedirs(point, exist_ok=True)
        mount("-t", "tmpfs", "-o", f"mode={'1777' if point in STICKY else '0700'}", "tmpfs", point)
    for target, fd, is_dir in opened:
        if is_dir:
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", target)
        os.close(fd)
    os.chdir("/")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.execvp("sleep", ["sleep", "infinity"])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())

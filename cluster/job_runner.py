"""Runs one local job: ``python cluster/job_runner.py RUN_DIR TIMEOUT -- COMMAND...``.

Writes the command's output to ``RUN_DIR/output.log`` and, as its last act, ``RUN_DIR/result``
(``succeeded 0`` / ``failed N`` / ``timedout -9``), so any later process can read how the run
ended even if the process that started it is gone.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    run_dir, timeout, sep, *command = argv
    if sep != "--" or not command:
        print("usage: python cluster/job_runner.py RUN_DIR TIMEOUT -- COMMAND...", file=sys.stderr)
        return 2
    run_dir = Path(run_dir)
    with open(run_dir / "output.log", "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=float(timeout))
            status = "succeeded" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status, code = "timedout", -9
    tmp = run_dir / "result.tmp"
    tmp.write_text(f"{status} {code}")
    os.replace(tmp, run_dir / "result")
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

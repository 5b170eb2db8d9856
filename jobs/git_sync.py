"""Job: bring the project's code up to date.

In a project that is a clone made for the cluster (CML: ``RAYDEPLOY_PROJECT_CLONE=1``), pull
it (fast-forward only). Where the project is your own working tree (the local platform), it
is never changed: the job records its revision.
"""
import json
import os
import subprocess
import sys
from pathlib import Path


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def main() -> int:
    revision = git("rev-parse", "HEAD")
    if revision.returncode != 0:
        print("not a git checkout: nothing to sync")
        return 0
    if os.environ.get("RAYDEPLOY_PROJECT_CLONE") == "1" and git("remote").stdout.strip():
        pull = git("pull", "--ff-only")
        print(pull.stdout + pull.stderr)
        if pull.returncode != 0:
            return pull.returncode
        revision = git("rev-parse", "HEAD")
    files = Path(os.environ.get("RAYDEPLOY_PROJECT_FILES", ".raydeploy_files"))
    files.mkdir(parents=True, exist_ok=True)
    (files / "revision.json").write_text(json.dumps({"revision": revision.stdout.strip()}))
    print(f"project at revision {revision.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

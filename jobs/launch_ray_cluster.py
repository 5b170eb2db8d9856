"""Job: prepare the cluster launch.

Checks that the node launcher and the ``ray`` command are in place and records the Ray
version every node will run (``ray_version`` in the project files), so a node started later
with another version is caught by the prerequisites check. The nodes themselves are started
by the head_launch and worker_launch checkpoints as platform applications.
"""
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    if not Path("cluster/launcher.py").exists():
        print("cluster/launcher.py is missing from the project")
        return 1
    venv = Path(os.environ.get("RAYDEPLOY_VENV", ".venv"))
    if os.environ.get("RAYDEPLOY_PROJECT_CLONE") == "1" and (venv / "bin" / "python").exists():
        # the nodes run in the project's venv (setup_environment built it): check that one
        found = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('ray'))"],
                               capture_output=True, text=True)
        if found.returncode != 0:
            print(f"Ray is not installed in {venv}: {found.stderr.strip()[-300:]}")
            return 1
        ray, version = f"{venv}/bin/python -m ray.scripts.scripts", found.stdout.strip()
    else:
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
        if ray is None:
            print("the 'ray' command is not installed")
            return 1
        version = importlib.metadata.version("ray")
    files = Path(os.environ.get("RAYDEPLOY_PROJECT_FILES", ".raydeploy_files"))
    files.mkdir(parents=True, exist_ok=True)
    (files / "ray_version").write_text(version)
    print(f"ready to launch Ray {version} with {ray}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

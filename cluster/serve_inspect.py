"""Find the ingress deployment's name of a Serve import path, without deploying it.

Per-deployment settings (num_replicas, ray_actor_options) in a Serve config must name the
deployment, which only the code knows: import it in a child process (importing user code
in the server process would pin its module versions)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cluster.serve import ServeError

_PROBE = """
import importlib, json, sys
from ray.serve import Application
module, attr = sys.argv[1].split(":")
target = getattr(importlib.import_module(module), attr)
if not isinstance(target, Application):
    target = target(json.loads(sys.argv[2]))
print(json.dumps(target._bound_deployment.name))
"""


class BadImportPath(ServeError):
    pass


def ingress_deployment(import_path: str, args: dict, project_dir: Path) -> str:
    result = subprocess.run([sys.executable, "-c", _PROBE, import_path, json.dumps(args)],
                            cwd=project_dir, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(project_dir), "PATH": "/usr/bin:/bin",
                                 "RAY_USAGE_STATS_ENABLED": "0"})
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadImportPath(f"cannot load {import_path}: {last}", field="import_path")
    return json.loads(result.stdout.strip().splitlines()[-1])

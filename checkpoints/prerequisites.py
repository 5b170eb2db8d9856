"""1. prerequisites: config valid, platform usable, Ray installed at the configured version,
configured ports free (local), every Serve import path resolvable."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
from pathlib import Path

from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Plan
from cluster.launcher import __file__ as LAUNCHER_FILE


class Prerequisites(Checkpoint):
    name = "prerequisites"
    description = ("Config valid, platform reachable with valid credentials, Ray installed at the "
                   "configured version, ports free, Serve import paths resolvable")

    def plan(self, ctx: Context) -> Plan:
        problems = self.problems(ctx)
        if problems:
            raise CheckpointFailed("; ".join(problems))
        return Plan(self.name, notes=("all prerequisites hold",))

    def apply(self, ctx: Context, plan: Plan) -> None:
        pass

    def verify(self, ctx: Context) -> list[str]:
        return self.problems(ctx)

    def problems(self, ctx: Context) -> list[str]:
        config = ctx.config
        problems = list(ctx.platform.check())
        try:
            installed = importlib.metadata.version("ray")
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None:
            problems.append("Ray is not installed: pip install -r requirements.txt")
        elif config.ray.version and installed != config.ray.version:
            problems.append(f"Ray {installed} is installed but the config asks for "
                            f"{config.ray.version} (ray.version)")
        if shutil.which("ray", path=str(Path(sys.executable).parent)) is None and not shutil.which("ray"):
            problems.append("the 'ray' command is not on PATH")
        if config.platform == "local":
            problems += [f"{p} is already in use" for p in ctx.cluster.busy_configured_ports()]
            if not (config.project_dir / "cluster" / "launcher.py").exists():
                problems.append(f"project_dir {config.project_dir} does not hold cluster/launcher.py"
                                f" (found at {LAUNCHER_FILE})")
            problems += self._import_problems(config)
        if not config.jobs_config.exists():
            problems.append(f"jobs_config {config.jobs_config} does not exist")
        return problems

    @staticmethod
    def _import_problems(config) -> list[str]:
        problems = []
        root = str(config.project_dir)
        added = root not in sys.path
        if added:
            sys.path.insert(0, root)
        try:
            for app in config.serve_apps:
                module = app.import_path.split(":")[0]
                try:
                    found = importlib.util.find_spec(module) is not None
                except (ImportError, ValueError):
                    found = False
                if not found:
                    problems.append(f"serve app {app.name}: module {module!r} not found under "
                                    f"{config.project_dir}")
        finally:
            if added:
                sys.path.remove(root)
        return problems

"""1. prerequisites: config valid, platform usable, Ray installed at the configured version,
configured ports free (nodes on one host), every Serve import path resolvable (nodes on this
machine)."""
from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

from checkpoints.access import principals_for
from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Plan
from cluster.config import ConfigError
from cluster.jobs_config import load_jobs_config
from cluster.lifecycle import LAUNCHER
from cluster.prometheus import prometheus_binary


class Prerequisites(Checkpoint):
    name = "prerequisites"
    description = ("Config valid, platform reachable with valid credentials, Ray installed at the "
                   "configured version, ports free, Serve import paths resolvable")

    def plan(self, ctx: Context) -> Plan:
        problems = self.problems(ctx)
        if len(problems) == 1:
            raise CheckpointFailed(problems[0])
        if problems:  # one line each: every host, port and setting is said apart
            raise CheckpointFailed(f"{len(problems)} problems:\n" + "\n".join(problems))
        return Plan(self.name, notes=("all prerequisites hold",))

    def apply(self, ctx: Context, plan: Plan) -> None:
        pass

    def verify(self, ctx: Context) -> list[str]:
        return self.problems(ctx)

    def problems(self, ctx: Context) -> list[str]:
        config, platform = ctx.config, ctx.platform
        problems = list(platform.check())
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
        if platform.shares_host_network and ctx.cluster.inventory.head_app() is None:
            problems += [f"{p} is already in use" for p in ctx.cluster.layout.busy_configured_ports()]
        if platform.on_this_machine:
            if not (config.project_dir / LAUNCHER).exists():
                problems.append(f"project_dir {config.project_dir} does not hold {LAUNCHER}")
            problems += self._import_problems(config)
        problems += self._monitoring_problems(ctx)
        if (config.serve.management_api.enabled and not platform.shares_host_network
                and not ctx.control_plane_url):
            how = f" ({platform.control_plane_setting})" if platform.control_plane_setting else ""
            problems.append("serve.management_api: the cluster's management API forwards to "
                            "its control plane, and this run has none (embedded, with nodes "
                            f"on hosts of their own): run through the control plane{how} or "
                            "set serve.management_api.enabled: false")
        try:  # a bad jobs_config.yaml stops the run here, before any project or node exists
            jobs = load_jobs_config(config.jobs_config)
        except ConfigError as e:
            problems.append(f"jobs_config: {e}")
        else:
            if jobs and not platform.has_jobs:
                problems.append(f"jobs_config lists {', '.join(j['name'] for j in jobs)}, and "
                                f"the {platform.name} platform runs no jobs (the nodes' "
                                f"environment is its own): point jobs_config at a file "
                                f"without jobs")
        return problems

    @staticmethod
    def _monitoring_problems(ctx: Context) -> list[str]:
        mon, platform = ctx.config.monitoring, ctx.platform
        if not mon.enabled:
            return []
        problems = []
        if not platform.has_project_files:
            problems.append(f"monitoring.enabled: Prometheus reads its config from the "
                            f"project's files, and the {platform.name} platform keeps none")
        elif not platform.beside_head:
            problems.append("monitoring.enabled: Prometheus reads Ray's target list on the "
                            "head's host, which needs nodes on one host network (the local "
                            "platform" + (f", or {platform.one_network_setting}"
                                          if platform.one_network_setting else "") +
                            ") or a platform that runs it beside the head")
        if platform.on_this_machine and prometheus_binary() is None:
            problems.append("monitoring.enabled but prometheus is not installed: `make "
                            "prometheus` (Debian's package, --no-install-recommends)")
        token_file = mon.api_token_file
        if token_file and not Path(token_file).is_file():
            problems.append(f"monitoring.api_token_file {token_file} does not exist")
        elif (not token_file and not ctx.config.api.metrics_public
              and principals_for(ctx.config).enabled):
            problems.append("the API requires tokens, so Prometheus needs one for /metrics: "
                            "set monitoring.api_token_file (a viewer token) or "
                            "api.metrics_public: true")
        return problems

    @staticmethod
    def _import_problems(config) -> list[str]:
        """Serve modules that are not files under project_dir. Looked up on disk, never
        imported: importing runs the package's code, and this runs in the API process too."""
        problems = []
        for app in config.serve.applications:
            module = app.import_path.split(":")[0]
            if module_file(config.project_dir, module) is None:
                problems.append(f"serve app {app.name}: module {module!r} not found under "
                                f"{config.project_dir}")
        return problems


def module_file(root: Path, module: str) -> Path | None:
    """The file that ``import module`` would load from ``root`` (a module or a package's
    __init__), without importing anything; None when there is none."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None

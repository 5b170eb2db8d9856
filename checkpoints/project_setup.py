"""2. project_setup: find or create the project (local: a workspace in the state dir)."""
from __future__ import annotations

import time

from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Action, Plan


def project_name(config) -> str:
    return config.cml.project_name or config.cluster_name


class ProjectSetup(Checkpoint):
    name = "project_setup"
    description = "Find or create the project that holds the jobs, apps and shared files"

    def plan(self, ctx: Context) -> Plan:
        name = project_name(ctx.config)
        project = ctx.platform.find_project(name)
        if project is not None and project.status == "success":
            return Plan(self.name, notes=(f"project {name} exists ({project.id})",))
        return Plan(self.name, (Action("create", f"project {name}", {"platform": ctx.platform.name}),))

    def apply(self, ctx: Context, plan: Plan) -> None:
        name = project_name(ctx.config)
        project = ctx.platform.create_project(name)
        timeout = ctx.config.cml.project_timeout_seconds
        start = time.monotonic()
        while project.status == "creating":  # a git clone finishes asynchronously (CML)
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                raise CheckpointFailed(f"project {name} ({project.id}) still creating after "
                                       f"{timeout:.0f}s (cml.project_timeout_seconds)")
            ctx.on_wait(f"project {name} ({project.id}) is being created ({elapsed:.0f}s)")
            time.sleep(1)
            project = ctx.platform.find_project(name) or project
        if project.status != "success":
            raise CheckpointFailed(f"project {name} ({project.id}) creation ended {project.status}")
        ctx.reporter.message(f"project {project.name}: {project.id}")

    def verify(self, ctx: Context) -> list[str]:
        name = project_name(ctx.config)
        return [] if ctx.platform.find_project(name) else [f"project {name} not found"]

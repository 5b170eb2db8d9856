"""2. project_setup: find or create the project (local: a workspace in the state dir)."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Action, Kind, Plan
from core.timing import TimedOut, poll_until


class ProjectSetup(Checkpoint):
    name = "project_setup"
    description = "Find or create the project that holds the jobs, apps and shared files"

    def plan(self, ctx: Context) -> Plan:
        name = ctx.platform.project_name
        project = ctx.platform.find_project(name)
        if project is not None and project.status == "success":
            return Plan(self.name, notes=(f"project {name} exists ({project.id})",))
        if project is not None and project.status == "creating":  # submitted earlier
            return Plan(self.name, (Action(Kind.WAIT, "project", name, {"id": project.id}),))
        return Plan(self.name, (Action(Kind.CREATE, "project", name,
                                       {"platform": ctx.platform.name}),))

    def apply(self, ctx: Context, plan: Plan) -> None:
        platform, name = ctx.platform, ctx.platform.project_name
        project = platform.create_project(name)  # finds it when it exists
        timeout = platform.project_timeout_seconds

        def created():
            current = platform.find_project(name) or project
            return current if current.status != "creating" else None
        try:  # a git clone finishes asynchronously (CML)
            project = poll_until(created, timeout, f"project {name} ({project.id}) to be created",
                                 on_wait=ctx.on_wait, clock=ctx.clock, interval=1.0)
        except TimedOut:
            raise CheckpointFailed(f"project {name} ({project.id}) still creating after "
                                   f"{timeout:.0f}s (the platform's project timeout)") from None
        if project.status != "success":
            raise CheckpointFailed(f"project {name} ({project.id}) creation ended {project.status}")
        ctx.reporter.message(f"project {project.name}: {project.id}")

    def verify(self, ctx: Context) -> list[str]:
        name = ctx.platform.project_name
        return [] if ctx.platform.find_project(name) else [f"project {name} not found"]

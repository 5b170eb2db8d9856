"""2. project_setup: find or create the project (local: a workspace in the state dir)."""
from __future__ import annotations

from checkpoints.base import Checkpoint, Context
from checkpoints.plan import Action, Plan


def project_name(config) -> str:
    return config.cml.project_name or config.cluster_name


class ProjectSetup(Checkpoint):
    name = "project_setup"
    description = "Find or create the project that holds the jobs, apps and shared files"

    def plan(self, ctx: Context) -> Plan:
        name = project_name(ctx.config)
        project = ctx.platform.find_project(name)
        if project is not None:
            return Plan(self.name, notes=(f"project {name} exists ({project.id})",))
        return Plan(self.name, (Action("create", f"project {name}", {"platform": ctx.platform.name}),))

    def apply(self, ctx: Context, plan: Plan) -> None:
        project = ctx.platform.create_project(project_name(ctx.config))
        ctx.reporter.message(f"project {project.name}: {project.id}")

    def verify(self, ctx: Context) -> list[str]:
        name = project_name(ctx.config)
        return [] if ctx.platform.find_project(name) else [f"project {name} not found"]

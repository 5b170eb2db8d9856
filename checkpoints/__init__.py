"""The engine that runs a deploy (plans, gates, approvals, runs, the orchestrator, the
operations) and, from ``checkpoints/steps/``, the checkpoints it runs, in deploy order."""
from __future__ import annotations

from checkpoints.steps.head_launch import HeadLaunch
from checkpoints.steps.job_creation import JobCreation
from checkpoints.steps.monitoring import Monitoring
from checkpoints.steps.prerequisites import Prerequisites
from checkpoints.steps.project_setup import ProjectSetup
from checkpoints.steps.serve_deploy import ServeDeploy
from checkpoints.steps.teardown import Teardown
from checkpoints.steps.validation import Validation
from checkpoints.steps.worker_launch import WorkerLaunch
from core.facts import CHECKPOINT_ORDER

CHECKPOINTS = (Prerequisites(), ProjectSetup(), JobCreation(), HeadLaunch(), WorkerLaunch(),
               ServeDeploy(), Monitoring(), Validation())
TEARDOWN = Teardown()
BY_NAME = {c.name: c for c in (*CHECKPOINTS, TEARDOWN)}
ORDER = CHECKPOINT_ORDER
assert tuple(c.name for c in CHECKPOINTS) == ORDER, "core.facts.CHECKPOINT_ORDER is the order"

"""The checkpoints, in deploy order, and the engine that runs them."""
from __future__ import annotations

from checkpoints.head_launch import HeadLaunch
from checkpoints.job_creation import JobCreation
from checkpoints.monitoring import Monitoring
from checkpoints.prerequisites import Prerequisites
from checkpoints.project_setup import ProjectSetup
from checkpoints.serve_deploy import ServeDeploy
from checkpoints.teardown import Teardown
from checkpoints.validation import Validation
from checkpoints.worker_launch import WorkerLaunch
from core.facts import CHECKPOINT_ORDER

CHECKPOINTS = (Prerequisites(), ProjectSetup(), JobCreation(), HeadLaunch(), WorkerLaunch(),
               ServeDeploy(), Monitoring(), Validation())
TEARDOWN = Teardown()
BY_NAME = {c.name: c for c in (*CHECKPOINTS, TEARDOWN)}
ORDER = CHECKPOINT_ORDER
assert tuple(c.name for c in CHECKPOINTS) == ORDER, "core.facts.CHECKPOINT_ORDER is the order"

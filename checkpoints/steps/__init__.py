"""The checkpoints themselves: each module one step of a deploy (plan, apply, verify), in the
order of ``core.facts.CHECKPOINT_ORDER``, and teardown. What runs them (plans, gates,
approvals, runs, the orchestrator) is the rest of ``checkpoints``."""

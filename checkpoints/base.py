"""What every checkpoint is, and what it is given to work with."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from checkpoints.notifications import Notifier
from checkpoints.plan import Gate, Plan, gate_for, policy_for
from cluster.config import Config
from cluster.manager import ClusterManager
from cluster.platforms.base import Platform
from core.timing import SYSTEM_CLOCK, Clock
from store import Store


class Reporter(Protocol):
    """Where progress goes (CLI lines, API run events). The engine itself never prints."""

    def checkpoint_started(self, name: str, index: int, total: int) -> None: ...
    def checkpoint_finished(self, name: str, outcome: str, seconds: float, detail: str = "") -> None: ...
    def waiting(self, message: str) -> None: ...
    def message(self, text: str) -> None: ...


class NullReporter:
    def checkpoint_started(self, name, index, total): pass
    def checkpoint_finished(self, name, outcome, seconds, detail=""): pass
    def waiting(self, message): pass
    def message(self, text): pass


WAITING_EVERY = 10.0  # seconds between two "still waiting" events of one wait


class EventReporter(NullReporter):
    """A run's progress as run events (``run.message``, ``run.waiting`` at most every 10 s),
    for a run that no terminal watches: a server's. A client following the run's event
    stream prints the same lines the CLI prints (the orchestrator records the checkpoint
    events itself)."""

    def __init__(self, store: Store, run_id: Callable[[], str | None], clock: Clock = SYSTEM_CLOCK):
        self.store, self.run_id, self.clock = store, run_id, clock
        self.checkpoint: str | None = None
        self._last_wait = -WAITING_EVERY

    def checkpoint_started(self, name, index, total):
        self.checkpoint = name

    def waiting(self, message):
        now = self.clock.monotonic()
        if now - self._last_wait >= WAITING_EVERY:
            self._last_wait = now
            self.store.events.add_event("run.waiting", message, run_id=self.run_id(),
                                 checkpoint=self.checkpoint)

    def message(self, text):
        self.store.events.add_event("run.message", text, run_id=self.run_id(), checkpoint=self.checkpoint)


@dataclass
class Context:
    config: Config
    store: Store
    platform: Platform
    cluster: ClusterManager
    reporter: Reporter = field(default_factory=NullReporter)
    force: bool = False
    run_id: str | None = None
    clock: Clock = SYSTEM_CLOCK
    cancelled: Callable[[], bool] = lambda: False
    notes: dict = field(default_factory=dict)  # what a checkpoint's phases pass each other
    # where the control plane running this answers, as the cluster reaches it (None: the
    # run is embedded in the CLI); the cluster's management API forwards there
    control_plane_url: str | None = None
    # where this context's events go (checkpoints/notifications.Notifier; make_context makes it)
    notifier: Notifier | None = None

    def on_wait(self, message: str) -> None:
        """Called by long waits; the reporter decides how often to show it."""
        if self.cancelled():
            raise RunCancelled()
        self.reporter.waiting(message)


class RunCancelled(Exception):
    pass


class Checkpoint:
    """One step of a deploy: ``plan`` looks at the live system, ``apply`` changes it,
    ``verify`` proves the result. Subclasses set the class attributes."""

    name: str = ""
    description: str = ""
    gate_policy: str = "none"  # shown to users; the logic is approval_reasons + destructive actions
    # it can remove or replace something running, so its gate can be destructive (said to
    # users as a fact of the checkpoint; a given plan's gate says whether it is)
    may_be_destructive: bool = False
    # verify also proves that every Serve app that served before apply still serves
    guards_serving: bool = False

    def plan(self, ctx: Context) -> Plan:
        raise NotImplementedError

    def apply(self, ctx: Context, plan: Plan) -> None:
        raise NotImplementedError

    def verify(self, ctx: Context) -> list[str]:
        """Problems left after apply; empty when the checkpoint's goal holds."""
        return []

    def ahead(self, ctx: Context) -> None:
        """Called when a checkpoint before this one in the run passed: start, in the
        background, what this one will wait for, once what that needs is there (validation:
        its Ray job, once the cluster has its nodes). What it starts changes nothing this
        checkpoint's plan looks at, and nothing depends on it: this checkpoint uses it only
        where it checks out, as it would check anything else. Its errors are ignored."""

    def approval_reasons(self, plan: Plan) -> list[str]:
        """Non-destructive reasons this plan needs an approval (destructive ones are generic)."""
        return []

    def gate(self, plan: Plan, config: Config) -> Gate:
        """Whether this plan needs an approval before it is applied, and why."""
        gate = gate_for(self, plan, config.approvals.required)
        return replace(gate, policy=policy_for(config, self.name)) if gate.required else gate


def serving_problems(ctx: Context, gone_by_plan: set[str] = frozenset()) -> list[str]:
    """What stopped serving: of the apps that served before apply (configured or not), the
    ones that do not now (after a bounded wait), except those the plan removed on purpose.
    Without a "before" (verify run on its own) every app on the cluster must serve."""
    from cluster.health import serve_checks, still_serving
    before = ctx.notes.get("serving_before")
    if before is None:
        return [f"{c.name}: {c.detail}" for c in serve_checks(ctx.cluster) if not c.ok]
    return still_serving(ctx.cluster, {k: v for k, v in before.items() if k not in gone_by_plan},
                         ctx.config.serve.verify_timeout_seconds, on_wait=ctx.on_wait)

"""The whole run planned before anything changes: every checkpoint's plan from the live
state and the config, with the knock-on effects of earlier steps predicted (a head that is
replaced restarts every worker and takes every Serve app down), and the config's changes
since the last successful run. ``deploy_master.py plan`` prints it, ``GET /api/v1/plan``
returns it, and ``--plan-file`` holds a run to exactly its fingerprints."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from checkpoints import BY_NAME, ORDER
from checkpoints.base import Context
from checkpoints.plan import Gate, Kind, Plan
from cluster.config.effective import effective_config
from core.errors import DomainError, Invalid

LAST_SUCCESS_KEY = "config.last_success"
REPLACES_HEAD = (Kind.CREATE, Kind.REPLACE)


@dataclass
class Step:
    checkpoint: str
    plan: Plan | None = None
    gate: Gate | None = None
    error: str | None = None  # the plan could not be made (e.g. a prerequisite fails)
    knock_on: list[str] = field(default_factory=list)  # predicted from earlier steps

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint,
                "plan": self.plan.to_dict() if self.plan else None,
                "fingerprint": self.plan.fingerprint if self.plan else None,
                "gate": self.gate.to_dict() if self.gate else None,
                "error": self.error, "knock_on": self.knock_on}


def preview(ctx: Context, selection: tuple[str, ...] = ORDER) -> dict:
    with ctx.cluster.inventory.one_listing():  # every planner reads the same app listing
        steps = _plan_steps(ctx, selection)
    last = ctx.store.kv.get(LAST_SUCCESS_KEY)
    return {"generated_at": time.time(), "cluster_name": ctx.config.cluster_name,
            "platform": ctx.config.platform, "config": ctx.config.source,
            "last_success": {"run_id": last["run_id"], "at": last["at"]} if last else None,
            "config_changes": config_diff(last["config"], effective_config(ctx.config))
            if last else [],
            "checkpoints": [s.to_dict() for s in steps],
            "fingerprints": {s.checkpoint: s.plan.fingerprint for s in steps if s.plan}}


def _plan_steps(ctx: Context, selection: tuple[str, ...]) -> list[Step]:
    steps: list[Step] = []
    head_restarts = False
    for name in selection:
        checkpoint, step = BY_NAME[name], Step(name)
        try:
            if head_restarts and name == "worker_launch":
                step.plan = checkpoint.plan_for(ctx, [])  # teardown leaves no worker
                step.knock_on.append("the head is started anew first: every worker starts again")
            elif head_restarts and name == "monitoring":
                step.plan = checkpoint.plan_for(ctx, head_restarts=True)
                if not step.plan.empty:
                    step.knock_on.append("the head is started anew first: Prometheus starts "
                                         "again with it (its data dir is kept)")
            elif head_restarts and name == "serve_deploy":
                step.plan = checkpoint.plan_for(ctx, {})  # a new head runs no app
                step.knock_on.append("the head is started anew first: every configured app "
                                     "is deployed again (apps not in the config are gone)")
            else:
                step.plan = checkpoint.plan(ctx)
            step.gate = checkpoint.gate(step.plan, ctx.config)
        except DomainError as e:
            step.error = str(e)
        if name == "head_launch" and step.plan and any(
                a.kind in REPLACES_HEAD for a in step.plan.actions):
            head_restarts = True
        steps.append(step)
    return steps


def config_diff(before: dict, after: dict) -> list[dict]:
    """``{key, before, after}`` of each changed key; ``before`` / ``after`` left out when the
    key is new / gone."""
    changes = []
    for key in sorted(set(before) | set(after)):
        if key in before and key in after and before[key] == after[key]:
            continue
        change = {"key": key}
        change.update({"before": before[key]} if key in before else {})
        change.update({"after": after[key]} if key in after else {})
        changes.append(change)
    return changes


def remember_success(ctx: Context, run_id: str) -> None:
    ctx.store.kv.set(LAST_SUCCESS_KEY, {"run_id": run_id, "at": ctx.clock.time(),
                                        "config": effective_config(ctx.config)})


def load_plan_file(path: str) -> dict[str, str]:
    """The fingerprints a saved plan (``plan --out``) holds a run to."""
    try:
        data = json.loads(Path(path).read_text())
        fingerprints = data["fingerprints"]
        if not isinstance(fingerprints, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Invalid(f"--plan-file {path}: not a plan saved by `deploy_master.py plan --out` "
                      f"({type(e).__name__})", field="plan_file") from None
    return {str(k): str(v) for k, v in fingerprints.items()}

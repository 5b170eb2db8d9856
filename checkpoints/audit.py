"""The audit trail: one event per mutation, from every path (CLI, API, automatic approvals),
with who (principal, claimed name, source, client address), what (action, target, plan
fingerprint) and how it ended (ok, pending, refused, failed). Events are hash-chained by the
store; ``deploy_master.py audit verify`` finds the first altered or missing one."""
from __future__ import annotations

from checkpoints.access import Actor
from core.records import AuditEvent
from store import Store


def record(store: Store, actor: Actor, action: str, target: str, result: str = "ok", *,
           plan_fingerprint: str | None = None, run_id: str | None = None,
           **detail) -> AuditEvent:
    return store.audit_log.audit(principal=actor.principal, claimed_name=actor.claimed_name,
                       source=actor.source, client_address=actor.client_address,
                       action=action, target=target, result=result,
                       plan_fingerprint=plan_fingerprint, run_id=run_id,
                       detail={k: v for k, v in detail.items() if v is not None})

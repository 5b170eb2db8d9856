"""Notifications: the events a human must hear about, sent to signed JSON webhooks and to
Slack-compatible incoming webhooks (``notifications.targets``).

``emit`` records one delivery per listening target (``pending``) and hands it to this
process's dispatcher thread; it returns at once, so a run never waits for (or fails because
of) a receiver. The dispatcher sends deliveries in the order they were emitted, retries a
delivery that got no answer, a 429 or a 5xx with exponential backoff up to
``notifications.max_attempts``, and records the outcome (``GET /api/v1/notifications``). A
redirect is never followed (it would resend the signed body elsewhere): a failed delivery,
not retried. Slack text is escaped: what a reason or an error says cannot link or mention.

Webhook requests are signed: ``X-Raydeploy-Signature: sha256=<hex>`` is HMAC-SHA256, keyed by
the target's secret, over ``<X-Raydeploy-Timestamp>.<body>`` (verify the timestamp is recent,
so a captured request cannot be replayed later). The target's URL and secret are read when
sending (from the config, the environment or a file) and are never recorded or logged.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path

import requests

from cluster.config.model import NOTIFICATION_EVENTS, NotificationTarget
from core.commands import approve_command
from core.records import Delivery
from core.timing import SYSTEM_CLOCK, Clock

log = logging.getLogger("raydeploy.notifications")
TIMEOUT = (3.0, 5.0)  # connect, read: one attempt never takes longer
RETRY_STATUS = {429, 500, 502, 503, 504}
EXIT_FLUSH_SECONDS = 5.0  # how long a CLI process waits for its deliveries at exit
EXITED = "; the process that emitted it exited"  # said of what was not sent when it exited


class DeliveryError(Exception):
    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


# -- what is sent ---------------------------------------------------------------------------------
def approval_facts(config, checkpoint: str, plan, gate, requester: str | None,
                   request_id: str | None = None) -> dict:
    """What an approver on call needs to decide in a minute: the actions and what they break,
    the fingerprint, the badge, the exact command and the inbox link."""
    command = approve_command(checkpoint, gate.destructive, gate.breaking,
                              config=str(config.source))
    public = config.notifications.public_url
    return {
        "plan_fingerprint": plan.fingerprint,
        "risk": gate.risk,
        "destructive": gate.destructive,
        "breaking": gate.breaking,
        "reasons": list(gate.reasons),
        "actions": [{"action": a.describe(), "breaks": list(a.breaks),
                     "impact": (a.impact or {}).get("notes", []) + (a.impact or {}).get(
                         "shortfalls", [])} for a in plan.actions],
        "requester": requester,
        "min_approvals": gate.policy.min_approvals,
        "approve_command": command,
        "inbox_url": f"{public.rstrip('/')}/ui/#/inbox" if public else None,
        "request_id": request_id,
        "wait_timeout_seconds": config.approvals.wait_timeout_seconds,
    }


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def slack_text(value) -> str:
    """Untrusted text (reasons, errors, names, plan notes) as Slack mrkdwn shows it and does
    nothing else: ``&``, ``<`` and ``>`` escaped as Slack's rules say, so it makes no link
    (``<url|text>``), mention (``<!channel>``, ``<@U1>``) or entity, and on one line (a
    newline in a reason cannot start a line of its own)."""
    text = _CONTROL.sub(" ", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict) -> dict:
    """A Slack message led by what matters at night: checkpoint, badge, actions, command.
    Every value is escaped (``slack_text``); the markup around them is ours."""
    e = slack_text
    event, checkpoint = payload["event"], e(payload.get("checkpoint") or "")
    badge = {"breaking": ":red_circle: BREAKING", "destructive": ":warning: DESTRUCTIVE"}.get(
        payload.get("risk") or "", "")
    cluster = e(payload.get("cluster"))
    if event in ("approval.required", "approval.expiring"):
        head = (f"{badge} {checkpoint} on {cluster} needs approval"
                + (" (the wait ends soon)" if event == "approval.expiring" else "")).strip()
        lines = [f"*{head}*"]
        lines += [f"- {e(a['action'])}" + (f" (BREAKS {', '.join(map(e, a['breaks']))})"
                                            if a["breaks"] else "")
                  for a in payload.get("actions", [])]
        lines += [f"  {e(note)}" for a in payload.get("actions", []) for note in a["impact"][:3]]
        lines.append(f"plan `{e(payload.get('plan_fingerprint'))}`, requested by "
                     f"{e(payload.get('requester'))}")
        command = e(payload.get("approve_command")).replace("`", "'")  # stays one code span
        lines.append(f"`{command}`")
        if payload.get("inbox_url"):  # the config's public_url: a link of ours
            lines.append(f"<{e(payload['inbox_url'])}|Open the approval inbox>")
    elif event == "approval.granted":
        lines = [f"{checkpoint} on {cluster} approved by "
                 f"{', '.join(map(e, payload.get('approvers', [])))}"]
    elif event == "approval.rejected":
        lines = [f"{checkpoint} on {cluster} rejected by {e(payload.get('approver'))}: "
                 f"{e(payload.get('reason') or 'no reason given')}"]
    elif event in ("run.succeeded", "run.failed"):
        lines = [f"run {e(payload.get('run_id'))} on {cluster} {event.split('.')[1]}"
                 + (f": {e(payload.get('error'))}" if payload.get("error") else "")]
    else:
        lines = [f"{e(event)} from raydeploy ({cluster})"]
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                   "text": text[:2900]}}]}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def _read(value: str | None, env: str | None, file: str | None, what: str) -> str:
    if value:
        return value
    if env:
        found = os.environ.get(env)
        if not found:
            raise DeliveryError(f"{what}: environment variable {env} is not set", retry=False)
        return found
    try:
        return Path(file).read_text().strip()
    except OSError as e:
        raise DeliveryError(f"{what}: cannot read its file ({e.strerror})", retry=False) from None


def send(target: NotificationTarget, payload: dict, delivery_id: str,
         session: requests.Session) -> None:
    """One attempt; raises DeliveryError (``retry``: worth trying again)."""
    url = _read(target.url, target.url_env, target.url_file, f"target {target.name} URL")
    if target.type == "slack":
        body, headers = json.dumps(slack_message(payload)).encode(), {}
    else:
        secret = _read(None, target.secret_env, target.secret_file,
                       f"target {target.name} secret").encode()
        body = json.dumps(payload, sort_keys=True).encode()
        stamp = str(int(time.time()))
        headers = {"X-Raydeploy-Event": payload["event"], "X-Raydeploy-Delivery": delivery_id,
                   "X-Raydeploy-Timestamp": stamp, "X-Raydeploy-Signature": sign(secret, stamp, body)}
    try:  # never follow a redirect: a 307/308 would resend the signed body elsewhere
        response = session.post(url, data=body, timeout=TIMEOUT, allow_redirects=False,
                                headers={"Content-Type": "application/json", **headers})
    except requests.RequestException as e:
        raise DeliveryError(f"no answer ({type(e).__name__})", retry=True) from None
    if 300 <= response.status_code < 400:  # the target's URL is out of date: say so, once
        raise DeliveryError(f"HTTP {response.status_code}: the target redirects, and redirects "
                            f"are not followed (configure the URL it redirects to)", retry=False)
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}",
                            retry=response.status_code in RETRY_STATUS)


# -- delivering, in the background ----------------------------------------------------------------
class Dispatcher:
    """A delivery thread (started at the first delivery): one queue, so deliveries go out in
    emission order, each recorded in the store it was emitted to. ``clock`` paces the
    retries and waits, ``send`` makes one attempt (both given in tests). A process makes
    one and hands it to its contexts (``make_context(..., dispatcher=)``)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, send=send):
        self.clock, self.send = clock, send
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when nothing is left to send
        self._thread: threading.Thread | None = None
        self._busy = 0
        # delivery id -> (config, store, delivery): submitted and not done (queued, or being
        # sent): what abandon records as failed, with no gap between the queue and the sender
        self._open: dict[str, tuple] = {}
        self._abandoned = False  # the process is exiting: nothing is recorded pending again

    def submit(self, config, store, delivery: Delivery) -> None:
        with self._lock:
            self._busy += 1
            self._open[delivery.id] = (config, store, delivery)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="notifications",
                                                daemon=True)
                self._thread.start()
        self._queue.put((config, store, delivery))

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted delivery is done; False after ``timeout`` seconds (of
        real time: the delivery thread runs in it, whatever clock paces its retries)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def abandon(self) -> None:
        """At exit: what is not sent yet is recorded as failed (never left pending forever)."""
        with self._lock:  # (a retry's "pending" is written under it: before this, or as failed)
            self._abandoned = True
            for _config, store, delivery in list(self._open.values()):
                current = store.deliveries.get_delivery(delivery.id)
                if current is not None and current.status == "pending":
                    store.deliveries.update_delivery(
                        delivery.id, status="failed", attempts=current.attempts,
                        last_error=(current.last_error or "not sent") + EXITED)

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            config, store, delivery = self._queue.get()
            try:
                self.deliver(config, store, delivery, session)
            except Exception:  # noqa: BLE001 - a bug here must not stop later deliveries
                log.exception("notification %s: delivery crashed", delivery.id)
            finally:
                with self._idle:
                    self._open.pop(delivery.id, None)
                    self._busy -= 1
                    if self._busy == 0:
                        self._idle.notify_all()

    def deliver(self, config, store, delivery: Delivery, session) -> None:
        """Send one recorded delivery: after the run's earlier ones to its target, tried
        again with backoff while worth it (up to ``notifications.max_attempts``), and its
        outcome recorded."""
        target = next((t for t in config.notifications.targets if t.name == delivery.target), None)
        if target is None:
            store.deliveries.update_delivery(delivery.id, status="failed", attempts=0,
                                  last_error="the target is no longer configured")
            return
        _after_earlier(store, delivery, self.clock)
        attempts, limit, error = 0, config.notifications.max_attempts, None
        while True:
            attempts += 1
            try:
                self.send(target, delivery.payload, delivery.id, session)
            except DeliveryError as e:
                error = str(e)
                if e.retry and attempts < limit:
                    with self._lock:
                        if self._abandoned:  # the process exits: this is the last word
                            store.deliveries.update_delivery(delivery.id, status="failed",
                                                             attempts=attempts,
                                                             last_error=str(e) + EXITED)
                            return
                        store.deliveries.update_delivery(delivery.id, status="pending",
                                                         attempts=attempts, last_error=str(e))
                    self.clock.sleep(min(30.0, 0.5 * 2 ** (attempts - 1)))
                    continue
                store.deliveries.update_delivery(delivery.id, status="failed", attempts=attempts,
                                      last_error=str(e))
                log.warning("notification %s to %s failed: %s", delivery.id, target.name, e)
                return
            # delivered; the last failed attempt's error stays for the record
            store.deliveries.update_delivery(delivery.id, status="delivered", attempts=attempts,
                                  last_error=error)
            return


ORDER_WAIT_SECONDS = 30


def _after_earlier(store, delivery: Delivery, clock: Clock) -> None:
    """Events of one run reach a target in order, whichever process emitted them: wait (at
    most ORDER_WAIT_SECONDS) while an earlier delivery of the run to this target is pending."""
    if not delivery.run_id:
        return
    deadline = clock.monotonic() + ORDER_WAIT_SECONDS
    while clock.monotonic() < deadline and store.deliveries.earlier_pending(delivery):
        clock.sleep(0.1)


class Notifier:
    """Where a run's (or a server's) events go: recorded in its store, then delivered in
    the background by its dispatcher. Each context has one (``Context.notifier``)."""

    def __init__(self, config, store, dispatcher: Dispatcher | None = None):
        self.config, self.store = config, store
        self.dispatcher = dispatcher or Dispatcher(store.clock)

    def emit(self, event: str, *, run_id: str | None = None, checkpoint: str | None = None,
             **facts) -> list[Delivery]:
        """Record and queue ``event`` for every target that listens to it; returns at once."""
        if event != "test" and event not in NOTIFICATION_EVENTS:
            raise ValueError(f"unknown notification event {event!r}")
        config, store = self.config, self.store
        targets = [t for t in config.notifications.targets
                   if event == "test" or event in t.events]
        deliveries = []
        # the audit trail's head leaves the store with every message: kept by the receivers,
        # it anchors the trail where the store's keeper cannot rewrite it (audit verify
        # --expect-head)
        head = store.audit_log.audit_head() if targets else None
        for target in targets:
            payload = {"event": event, "cluster": config.cluster_name, "at": store.clock.time(),
                       "run_id": run_id, "checkpoint": checkpoint, "audit_head": head, **facts}
            delivery = store.deliveries.add_delivery(event, target.name, payload, run_id=run_id,
                                          checkpoint=checkpoint)
            self.dispatcher.submit(config, store, delivery)
            deliveries.append(delivery)
        return deliveries

    def flush(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until what was emitted is delivered or given up."""
        return self.dispatcher.flush(timeout)

    def flush_at_exit(self, timeout: float = EXIT_FLUSH_SECONDS) -> None:
        """A short-lived process (the CLI): give deliveries a moment, then record the rest."""
        if not self.dispatcher.flush(timeout):
            self.dispatcher.abandon()

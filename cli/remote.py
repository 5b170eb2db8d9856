"""deploy_master.py as a client of a control plane (``--server URL`` or RAYDEPLOY_SERVER; on
CML the control app, cli/bootstrap.py): every command acts through its REST API, with the
output, prompts and exit codes of embedded mode.

A run is started with the desired state of the local config (cluster/config/desired.py)
and followed through its event stream: the same lines, the same gate (a prompt on a
terminal, ``--auto-approve``, ``--no-wait`` exiting 3 while the run keeps waiting on the
server). Starting the same desired state again while its run is still going attaches to
that run (a re-run of a CI workflow follows the run an approval continued)."""
from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

from checkpoints.errors import RunRejected
from checkpoints.plan import Gate, Plan
from cli.audit import (
    checked_head,
    parse_since,
    report_verification,
    say_audit_event,
    say_audit_head,
)
from cli.control_plane import ControlPlane
from cli.gate import prompt_decision, red, show_plan
from cli.output import (
    EXIT_AWAITING,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    STATUS_EVERY,
    LineReporter,
    cluster_usage,
    say,
    say_config_warnings,
    say_endpoints,
    status_document,
)
from cli.plan import show_preview
from cluster.config.desired import desired_state
from cluster.platforms import REGISTRY
from core import commands
from core.errors import Conflict
from core.facts import FINISHED, Outcome, RunStatus
from core.records import ApprovalPolicy
from core.text import printable

RUN_EXIT = {RunStatus.SUCCEEDED: EXIT_OK, RunStatus.AWAITING_APPROVAL: EXIT_AWAITING,
            RunStatus.REJECTED: EXIT_REJECTED}
OUTCOMES = {str(o) for o in Outcome}


def command(args, server: str, *words: str) -> str:
    """``python deploy_master.py --config C --server URL WORDS``, quoted."""
    return commands.deploy_master(*words, config=args.config, server=server)


def approve_command(args, server: str, name: str, gate: Gate) -> str:
    return commands.approve_command(name, gate.destructive, gate.breaking, config=args.config,
                                    server=server)


class Remote:
    """The commands, against one control plane, for one config (the desired state)."""

    def __init__(self, args, config, plane: ControlPlane):
        self.args, self.config, self.plane = args, config, plane
        self.gate_seen: tuple | None = None  # (name, plan, gate, command) of the last gate

    # -- runs ---------------------------------------------------------------------------------
    def run(self, mode: str, checkpoint: str | None = None) -> int:
        args, plane = self.args, self.plane
        body = {"force": bool(args.force), "attach": True, "desired": desired_state(self.config)}
        if args.resume:
            earlier = (self.plane.get(f"/api/v1/deployments/{args.run_id}", "read the run")
                       if args.run_id else self._latest())
            if earlier and earlier["status"] == RunStatus.REJECTED:  # as embedded: exit 4
                raise RunRejected(f"run {earlier['id']} was rejected ({earlier['error']}); a "
                                  f"rejection is final: start a new one with --deploy")
            body.update(resume=True, **({"run_id": args.run_id} if args.run_id else {}))
        elif mode == "teardown":
            body["teardown"] = True
        elif mode == "checkpoint":
            body["checkpoints"] = [checkpoint]
        elif mode == "start_from":
            body["start_from"] = checkpoint
        run = plane.post("/api/v1/deployments", "start the run", body)
        if run.get("attached"):
            at = time.strftime("%H:%M:%S", time.localtime(run["created_at"]))
            say(f"run {run['id']} ({run['mode']}, {run['status']}, started {at} by "
                f"{printable(run['requester'])}) is already going on the control plane for the "
                f"same config: following it")
        elif args.resume:
            remaining = [c for c in run["checkpoints"] if not Outcome(c["status"]).done]
            say(f"resuming run {run['id']} ({run['mode']}) at "
                f"{remaining[0]['checkpoint'] if remaining else 'its end'} on the control plane")
        else:
            say(f"run {run['id']}: {mode}" + (f" {checkpoint}" if checkpoint else "")
                + f" on {self.config.platform} (control plane {plane.url}, {self.config.source})")
        say_config_warnings(self.config)
        return self.follow(run)

    def follow(self, run: dict) -> int:
        """Print the run's events as the CLI prints a run, until it ends (or, with
        --no-wait, until it waits at a gate)."""
        reporter, started, run_id = LineReporter(), time.monotonic(), run["id"]
        last_status = time.monotonic()
        waiting_at: str | None = None
        for event in self.plane.events(run_id):
            kind, name = event["kind"], event["checkpoint"]
            if kind == "checkpoint.started":
                reporter.checkpoint_started(name, event["data"].get("index", 0),
                                            event["data"].get("total", 0))
            elif kind.startswith("checkpoint.") and kind.split(".", 1)[1] in OUTCOMES:
                outcome = kind.split(".", 1)[1]
                if outcome != Outcome.AWAITING_APPROVAL:
                    reporter.checkpoint_finished(name, outcome, event["data"].get("seconds", 0),
                                                 event["data"].get("detail") or "")
            elif kind == "run.message":
                reporter.message(event["message"])
            elif kind == "run.waiting":
                reporter.waiting(event["message"])
            elif kind == "approval.required":
                answer = self.gate(run_id, name, event["data"])
                if answer == "exit":
                    return self._finish(run_id, started, stopped_at=name)
                waiting_at = name if answer == "wait" else None
            elif kind in ("approval.approved", "approval.rejected") and waiting_at == name:
                say(f"    {printable(event['message'])}")
                waiting_at = None
            elif kind == "quiet" and waiting_at and time.monotonic() - last_status >= STATUS_EVERY:
                last_status = time.monotonic()
                say(f"    ... still awaiting approval of {waiting_at}; "
                    f"{self._approve_hint(waiting_at)}")
        return self._finish(run_id, started)

    def gate(self, run_id: str, name: str, data: dict) -> str:
        """A gate the run waits at: "continue" (decided here, or already), "wait" (for a
        decision given elsewhere) or "exit" (--no-wait)."""
        args = self.args
        state = self.plane.get(f"/api/v1/approvals/{name}", "read the gate")
        plan = Plan.from_dict(data["plan"])
        if not state.get("awaiting") or state.get("run_id") != run_id or \
                state.get("plan_fingerprint") != plan.fingerprint:
            return "continue"  # an event of the past: decided since
        g = data["gate"]
        gate = Gate(required=True, destructive=g["destructive"], reasons=tuple(g["reasons"]),
                    breaking=g["breaking"],
                    policy=ApprovalPolicy(min_approvals=g.get("min_approvals", 1)))
        command = approve_command(args, self.plane.url, name, gate)
        self.gate_seen = (name, plan, gate, command)
        breaking_ok = getattr(args, "acknowledge_breaking", False)
        if args.auto_approve and (breaking_ok or not gate.breaking):
            self._decide(name, run_id, plan.fingerprint, True, "--auto-approve", gate)
            say(f"    auto-approved {name} (plan {plan.fingerprint})")
            return "continue"
        show_plan(name, plan, gate, data.get("why_not") or "")
        if args.auto_approve:
            say(red("    --auto-approve does not approve a plan that breaks apps: review it, "
                    "then approve it (or run again with --acknowledge-breaking)"))
        if args.no_wait or args.auto_approve:
            say(f"    approve with:  {command}\n    or in the inbox: {self.plane.url}/ui/#/inbox\n"
                f"    the run waits on the control plane and goes on once approved; run the "
                f"same command again to follow it")
            return "exit"
        if sys.stdin.isatty():
            answer = prompt_decision(name, gate)
            if answer is None:
                say("\n    no answer: the run stays awaiting approval on the control plane")
                return "exit"
            approved, reason = answer
            self._decide(name, run_id, plan.fingerprint, approved,
                         reason or f"{'approved' if approved else 'declined'} at the prompt", gate)
            return "continue"
        say(f"    waiting for an approval; give it with:\n      {command}\n"
            f"    or in the inbox: {self.plane.url}/ui/#/inbox")
        return "wait"

    def _approve_hint(self, name: str) -> str:
        return f"approve in the inbox ({self.plane.url}/ui/#/inbox) or with `approve {name}`"

    def _decide(self, name: str, run_id: str, fingerprint: str, approve: bool, reason: str,
                gate: Gate) -> dict:
        body = {"decision": "approve" if approve else "reject", "run_id": run_id,
                "plan_fingerprint": fingerprint, "reason": reason,
                "acknowledge_risks": approve and gate.destructive,
                "acknowledge_breaking": approve and gate.breaking}
        if self.args.operator:
            body["approved_by"] = self.args.operator
        return self.plane.post(f"/api/v1/approvals/{name}", f"{body['decision']} {name}", body)

    def _finish(self, run_id: str, started: float, stopped_at: str | None = None) -> int:
        """The run's end as the CLI says it (``stopped_at``: the gate this client stopped
        following at, --no-wait: the run may still be waiting there)."""
        run = self.plane.get(f"/api/v1/deployments/{run_id}", "read the run")
        status, elapsed = RunStatus(run["status"]), time.monotonic() - started
        self._step_summary(run, stopped_at)
        again = command(self.args, self.plane.url, "--deploy")
        if status == RunStatus.SUCCEEDED:
            say(f"run {run_id} succeeded in {elapsed:.1f}s")
            if run["mode"] != "teardown":
                info = self._info()
                say_endpoints(info, self.config, self._usage(info))
        elif status == RunStatus.AWAITING_APPROVAL or (stopped_at and status not in FINISHED):
            say(f"run {run_id} is awaiting approval at {stopped_at or run['failed_checkpoint']} "
                f"on the control plane {self.plane.url}; once approved it goes on by itself "
                f"(follow it with: {again})")
            return EXIT_AWAITING
        elif status == RunStatus.REJECTED:
            say(f"run {run_id} rejected: {printable(run['error'])}", err=True)
        else:
            say(f"run {run_id} {status}: {printable(run['error'])}\nfix the cause and continue "
                f"with: {command(self.args, self.plane.url, '--resume')}",
                err=True)
        return RUN_EXIT.get(status, EXIT_FAILED)

    def _step_summary(self, run: dict, stopped_at: str | None) -> None:
        """In a GitHub Actions job, what the run came to, for the job's page: a gate with
        what it changes, where to approve it, how to follow the run."""
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        lines = [f"### raydeploy run `{run['id']}`: {run['status']}",
                 f"control plane: {self.plane.url}"]
        if self.gate_seen and (stopped_at or run["status"] == RunStatus.AWAITING_APPROVAL):
            name, plan, gate, command = self.gate_seen
            lines += [f"**{name} awaits {gate.risk} approval** (plan `{plan.fingerprint}`):"]
            lines += [f"- {printable(a.describe())}" + (" **BREAKING**" if a.breaks else "")
                      for a in plan.actions]
            lines += [f"Approve it in the [inbox]({self.plane.url}/ui/#/inbox) or with "
                      f"`{command}`; the run then goes on by itself: re-run this workflow "
                      f"to follow it."]
        elif run.get("error"):
            lines.append(f"error: {printable(run['error'])}")
        try:
            with open(path, "a") as summary:
                summary.write("\n".join(lines) + "\n\n")
        except OSError as e:
            say(f"warning: GITHUB_STEP_SUMMARY {path}: {e.strerror}", err=True)

    def _latest(self) -> dict | None:
        runs = self.plane.get("/api/v1/deployments", "list runs", limit=1)["deployments"]
        return runs[0] if runs else None

    # -- decisions ----------------------------------------------------------------------------
    def decide(self) -> int:
        args, name = self.args, self.args.name
        decision = "approve" if args.command == "approve" else "reject"
        state = self.plane.get(f"/api/v1/approvals/{name}", "read the gate")
        if not state.get("awaiting"):
            raise Conflict(f"no plan of {name} is awaiting approval on the control plane "
                           f"{self.plane.url}")
        # the decision names the run and plan shown here: the control plane refuses it (409)
        # when another one awaits by then
        run_id = args.run or state["run_id"]
        fingerprint = args.fingerprint or state["plan_fingerprint"]
        g = state["gate"]
        gate = Gate(required=True, destructive=g["destructive"], breaking=g["breaking"],
                    reasons=tuple(g["reasons"]))
        say(f"    run {state['run_id']}")
        show_plan(name, Plan.from_dict(state["plan"]), gate)
        if decision == "approve" and sys.stdin.isatty():
            answer = input(f"    Approve plan {fingerprint} of run {run_id} at {name}? [y/N]: ")
            if answer.strip().lower() not in ("y", "yes"):
                say("not approved: nothing was recorded")
                return EXIT_OK
        body = {"decision": decision, "run_id": run_id, "plan_fingerprint": fingerprint,
                "reason": args.reason,
                "acknowledge_risks": getattr(args, "acknowledge_risks", False),
                "acknowledge_breaking": getattr(args, "acknowledge_breaking", False)}
        if args.operator:
            body["approved_by"] = args.operator
        record = self.plane.post(f"/api/v1/approvals/{name}", f"{decision} {name}", body)
        by = record["approver"] + (f" (claimed: {record['claimed_by']})"
                                   if record.get("claimed_by") else "")
        say(f"{record['decision']} {name} plan {record['plan_fingerprint']} of run "
            f"{record['run_id']} (record {record['id']}) by {printable(by)}")
        after = self.plane.get(f"/api/v1/approvals/{name}", "read the gate")
        if decision == "reject":
            say(f"run {record['run_id']} ended as rejected")
        elif after.get("awaiting") and not after.get("approved") and after.get("approvals"):
            say(f"{len(after['approvals'])} of {after['min_approvals']} approvals: {name} needs "
                f"more approvals (approvals.policy) before it applies")
        else:
            say(f"the run goes on on the control plane; follow it with: "
                f"{command(args, self.plane.url, '--deploy')}")
        return EXIT_OK

    # -- reads --------------------------------------------------------------------------------
    def status(self) -> int:
        plane = self.plane
        if self.args.format == "json":
            return self._status_json()
        say(f"control plane: {plane.url} (cluster {self.config.cluster_name} on "
            f"{self.config.platform})")
        run = self._latest()
        if run is None:
            say("no runs yet")
        else:
            say(f"run {run['id']} ({run['mode']}, by {printable(run['requester'])}): "
                f"{run['status']}" + (f" - {printable(run['error'])}" if run.get("error") else ""))
            for r in run["checkpoints"]:
                took = f" ({r['duration']:.2f}s)" if r.get("duration") is not None else ""
                say(f"  {r['checkpoint']:<16} {r['status']}{took}"
                    + (f": {printable(r['error'].splitlines()[0])}" if r.get("error") else ""))
        pending = plane.get("/api/v1/approvals", "list approvals", state="pending")["approvals"]
        for req in pending:
            kind = " (BREAKING)" if req.get("breaking") else " (destructive)" \
                if req.get("destructive") else ""
            gate = Gate(required=True, destructive=bool(req.get("destructive")),
                        breaking=bool(req.get("breaking")))
            say(f"awaiting approval: {req['checkpoint']} plan {req['plan_fingerprint']}{kind}: "
                f"{approve_command(self.args, plane.url, req['checkpoint'], gate)}")
        nodes = plane.get("/api/v1/resources/nodes", "list nodes")["nodes"]
        say(f"nodes: {sum(bool(n.get('alive')) for n in nodes)} alive of {len(nodes)}")
        for n in nodes:
            say(f"  {n.get('platform_app_name') or '-':<24} {n.get('node_type'):<6} "
                f"{n.get('node_ip') or '-':<12} {'ALIVE' if n.get('alive') else 'NOT ALIVE'} "
                f"CPU={(n.get('resources') or {}).get('CPU', 0)}")
        if nodes:
            info = self._info()
            say_endpoints(info, self.config, self._usage(info))
        return EXIT_OK

    def _status_json(self) -> int:
        run = self._latest()
        nodes = self.plane.get("/api/v1/resources/nodes", "list nodes")["nodes"]
        info = self._info() if nodes else {}
        say(json.dumps(status_document(
            self.config, run and {k: run.get(k) for k in ("id", "mode", "status", "error")},
            nodes, info, self._usage(info) if info else {}), indent=2))
        return EXIT_OK

    def _usage(self, info: dict) -> dict:
        """How to use the cluster: with its Ray token (on CML the head leaves a copy in the
        cluster's project, where its sessions and jobs read it); the nodes' own addresses."""
        inside = REGISTRY[self.config.platform].usage()
        if inside is not None:
            return cluster_usage(info, self.config, *inside)
        return cluster_usage(info, self.config, None, f"where the control plane "
                                                      f"{self.plane.url} runs")

    def _info(self) -> dict:
        """Where the cluster answers; its management API is this control plane."""
        info = self.plane.get("/api/v1/cluster/info", "read the cluster")
        return {**info, "management_api_url": self.plane.url}

    def plan(self) -> int:
        started = time.monotonic()
        result = self.plane.post("/api/v1/plan", "plan", {"desired": desired_state(self.config)})
        return show_preview(self.args, self.config, result, time.monotonic() - started,
                            where=f" by the control plane {self.plane.url}")

    def audit(self) -> int:
        if self.args.audit_command == "verify":
            expect = checked_head(self.args.expect_head)
            answer = self.plane.get("/api/v1/audit/verify", "verify the audit trail",
                                    **({"expect_head": expect} if expect else {}))
            return report_verification(answer["checked"], answer["problem"],
                                       answer.get("head"), expect)
        params = {"action": self.args.action}
        since = parse_since(self.args.since, time.time())
        if since is not None:
            params["since"] = since
        answer = self.plane.get("/api/v1/audit", "read the audit trail",
                                **{k: v for k, v in params.items() if v is not None})
        for event in answer["events"]:
            say_audit_event(SimpleNamespace(**event), self.args.format)
        say_audit_head(answer.get("head"), self.args.format)
        return EXIT_OK

    def list_checkpoints(self) -> int:
        listed = self.plane.get("/api/v1/checkpoints", "list checkpoints")["checkpoints"]
        say(f"{'#':<3}{'checkpoint':<16}{'gate':<62}last result")
        for i, cp in enumerate(listed, 1):
            last = cp.get("last_result") or {}
            say(f"{i:<3}{cp['name']:<16}{cp.get('gate_policy', ''):<68}{last.get('status', '-')}")
        return EXIT_OK


def server_of(args, environ=os.environ) -> str | None:
    """The control plane to act through: ``--server`` or RAYDEPLOY_SERVER."""
    return (getattr(args, "server", None) or environ.get("RAYDEPLOY_SERVER") or "").strip() or None

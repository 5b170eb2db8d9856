"""6. serve_deploy: deploy the configured Serve apps and the management API app, merged
with what runs.

Apps deployed by other means (the API) are kept. An app this checkpoint deployed earlier
and the config no longer lists is deleted, and an app whose code (import path) changes is
replaced: both are destructive. So is a change of the management API app (its tokens, or a
setting it enforces: ``cluster.serve.enforced_settings``): its replica reads them when it
starts and keeps enforcing what it started with, so it is replaced. Every change is shown
setting by setting, secrets redacted (checkpoints.changes)."""
from __future__ import annotations

import ipaddress

from checkpoints import changes
from checkpoints.access import principals_for
from checkpoints.base import Checkpoint, Context, serving_problems
from checkpoints.errors import CheckpointFailed
from checkpoints.plan import Action, Kind, Plan
from cluster.dashboard import DashboardError
from cluster.serve import APP_KEYS, FAILED_STATES, app_paths, same_app

SERVE_TIMEOUT = 180
MANAGED_KEY = "serve.managed"  # the apps this checkpoint deployed (it may delete only those)


def app_action(kind: Kind, desired: dict, live: dict | None, key: bytes,
               **extra) -> Action:
    """Deploying ``desired`` over ``live`` (None: a new app), with what it changes: every
    Serve setting (args, runtime_env, replicas, resources), before -> after, secrets
    redacted and sealed (checkpoints.changes)."""
    details = {"import_path": desired["import_path"], "route_prefix": desired["route_prefix"],
               **extra}
    if live is None:
        shown, sealed = changes.settings(_serve_settings(desired, ("args", "runtime_env",
                                                                   "deployments")))
        details.update({"settings": shown} if shown else {})
    else:
        details["changes"], sealed = changes.diff(_serve_settings(live, APP_KEYS),
                                                  _serve_settings(desired, APP_KEYS))
    return Action(kind, "app", desired["name"], details, sealed=changes.seal(key, sealed))


def _serve_settings(app: dict, keys: tuple) -> dict:
    return {k: app[k] for k in keys if app.get(k)}  # as same_app compares: empty is unset


class ServeDeploy(Checkpoint):
    name = "serve_deploy"
    description = "Deploy the configured Serve apps via the dashboard Serve REST API, merging with what runs"
    gate_policy = "destructive approval when it would remove or replace running apps"
    may_be_destructive = True
    guards_serving = True

    @staticmethod
    def desired_apps(ctx: Context) -> list[tuple[dict, str]]:
        principals = principals_for(ctx.config)
        if ctx.control_plane_url:  # the cluster's API forwards to it, which checks tokens
            return ctx.cluster.serve.desired_apps([], ctx.control_plane_url)
        if ctx.config.serve.management_api.enabled and not principals.enabled:
            host = ctx.cluster.serve.proxy_host()
            if host and not ipaddress.ip_address(host).is_loopback:
                raise CheckpointFailed(
                    f"the management API would answer on {host} (the Serve proxy) without API "
                    f"tokens: configure api.tokens_file (or RAYDEPLOY_API_TOKENS), or set "
                    f"serve.management_api.enabled: false")
        return ctx.cluster.serve.desired_apps(principals.digests())

    def plan(self, ctx: Context) -> Plan:
        try:
            status = ctx.cluster.serve.status()
        except DashboardError:
            status = {}
        return self.plan_for(ctx, status)

    def plan_for(self, ctx: Context, status: dict) -> Plan:
        """The plan against this Serve status (the live one, or a preview's prediction)."""
        apps = self.desired_apps(ctx)
        desired = {app["name"]: app for app, _ in apps}
        paths = {app["name"]: path for app, path in apps}
        live = ctx.cluster.serve.deployed_configs(status)
        managed = ctx.store.kv.get(MANAGED_KEY, [])
        key = ctx.store.audit_log.derived_key("plan-seal")
        actions = []
        for name, app in desired.items():
            current = live.get(name)
            if current is None:
                actions.append(app_action(Kind.CREATE, app, None, key))
            elif not same_app(current, app):
                # the management API reads its config and tokens when its replica starts: a
                # change of them (of its args) replaces it, and the plan says what changes
                kind = (Kind.REPLACE if current.get("import_path") != app["import_path"]
                        or name == ctx.config.serve.management_api.name else Kind.UPDATE)
                actions.append(app_action(kind, app, current, key))
            elif status.get(name, {}).get("status") in FAILED_STATES:
                actions.append(Action(Kind.REPLACE, "app", name, {"why": status[name]["status"]}))
            elif (converging := self._converging(ctx, status.get(name) or {}, paths[name])):
                # submitted (by an earlier run, maybe one that crashed), not reached yet
                actions.append(Action(Kind.WAIT, "app", name, {"state": converging}))
        for name in managed:
            if name not in desired and name in live:
                actions.append(Action(Kind.DELETE, "app", name, {"why": "no longer in the config"}))
        return Plan(self.name, tuple(actions), notes=(f"{len(live)} app(s) running",))

    @staticmethod
    def _converging(ctx: Context, app: dict, path: str) -> str | None:
        """Why an app whose config is already submitted is not serving yet (None: it is)."""
        if app.get("status") != "RUNNING":
            return app.get("status") or "MISSING"
        replicas = [r for d in (app.get("deployments") or {}).values()
                    for r in d.get("replicas") or []]
        if any(r.get("state") != "RUNNING" for r in replicas):
            return "replicas starting"
        if not ctx.cluster.serve.probe(path)[0]:  # RUNNING is not yet answering
            return "not answering yet"
        return None

    def apply(self, ctx: Context, plan: Plan) -> None:
        serve = ctx.cluster.serve
        apps = self.desired_apps(ctx)
        desired = {app["name"]: app for app, _ in apps}
        touched = [a.name for a in plan.actions if a.kind != Kind.WAIT]
        removes = [n for n in touched if n not in desired]
        ctx.notes["removed_apps"] = removes
        upserts = [desired[n] for n in touched if n in desired]
        if any(a.kind == Kind.REPLACE and "why" in a.details for a in plan.actions):
            # a failed app with an unchanged config: remove it first so Serve redeploys it
            serve.apply(removes=[n for n in touched if n in desired])
        if upserts or removes:
            serve.apply(upserts=upserts, removes=removes)
        ctx.store.kv.set(MANAGED_KEY, sorted(desired))
        serve.wait_running(list(desired), SERVE_TIMEOUT, ctx.on_wait)
        serve.wait_answering([path for _, path in apps], SERVE_TIMEOUT, ctx.on_wait)

    def verify(self, ctx: Context) -> list[str]:
        from cluster.health import serve_checks
        configured = {name for name, _ in app_paths(ctx.config)}
        problems = [c.detail for c in serve_checks(ctx.cluster)
                    if not c.ok and c.name.split(":", 1)[-1] in configured]
        return problems + serving_problems(ctx, set(ctx.notes.get("removed_apps", ())))

"""Operations: the changes the API makes on request (add or remove a node, deploy or delete
a Serve app, stop Ray that this tool did not start on the hosts), each run as a one-step run
through the same engine as the checkpoints: plan (from the live cluster), gate (by
``approvals.operations``), apply, verify, record, with run events and an audit event. No side
door: the API never calls the cluster to mutate it.

Parameters are kept in the run's options, so an operation run resumes like any other. The
base class is ``checkpoints.operation.Operation``."""
from __future__ import annotations

from checkpoints import impact
from checkpoints.base import Context, serving_problems
from checkpoints.host_cleanup import HostCleanup
from checkpoints.operation import Operation
from checkpoints.plan import Action, Kind, Plan
from checkpoints.steps.serve_deploy import app_action
from cluster.config import NodeResources
from cluster.health import stuck_replicas
from cluster.impact import additions, replica_demands
from cluster.inventory import NoHead
from cluster.lifecycle import added_by_note
from cluster.serve import MANAGEMENT_IMPORT_PATH, RoutePrefixTaken, ServeError, same_app
from cluster.serve_policy import check_actor_options, check_import_path, check_runtime_env
from cluster.serve_routes import describe_taken, management_paths_taken, normalized, takes_traffic_of
from core.errors import Conflict, Invalid, NotFound
from core.timing import TimedOut

NODE_TIMEOUT = 180


# -- nodes -------------------------------------------------------------------------------------
class NodeAdd(Operation):
    name = "node_add"
    action = "node.add"
    description = "Add a worker node (started on the platform, joined to Ray)"
    gate_policy = "approvals.operations.node_add (default: none)"

    @property
    def target(self) -> str:
        return "worker"

    def precheck(self, ctx: Context) -> None:
        if ctx.cluster.inventory.head_address() is None:
            raise NoHead("cannot add a worker")

    def plan(self, ctx: Context) -> Plan:
        p = self.params
        started = self._started(ctx)
        if started is not None:  # this run started it before it was interrupted: wait for it
            return Plan(self.name, (Action(Kind.WAIT, "worker", started.name,
                                           {"status": started.status}),))
        return Plan(self.name, (Action(Kind.CREATE, "worker", None, {
            "cpu": p["cpu"], "memory": p["memory"], "gpus": p["gpus"]}),))

    @staticmethod
    def _started(ctx: Context):
        note = added_by_note(ctx.run_id) if ctx.run_id else None
        return next((a for a in ctx.cluster.inventory.worker_apps()
                     if note and a.spec.description.endswith(note)), None)

    def apply(self, ctx: Context, plan: Plan) -> None:
        p = self.params
        lifecycle = ctx.cluster.lifecycle
        app = self._started(ctx) if plan.names(Kind.WAIT) else None
        app = app or lifecycle.add_workers(1, NodeResources(cpu=p["cpu"], memory=p["memory"],
                                                            gpus=p["gpus"]), added_by=ctx.run_id)[0]
        self.result = {"app_id": app.id, "app_name": app.name, "cpu": app.spec.cpu,
                       "memory": app.spec.memory, "gpus": app.spec.gpus}
        ctx.reporter.message(f"started {app.name} ({app.id})")
        if p.get("wait", True):
            lifecycle.wait_alive([app], NODE_TIMEOUT, ctx.on_wait)


class NodeRemove(Operation):
    name = "node_remove"
    action = "node.remove"
    description = "Drain a worker node (its work moves elsewhere), then stop and delete its app"
    gate_policy = "approvals.operations.node_remove (default: destructive approval)"
    may_be_destructive = True

    @property
    def target(self) -> str:
        return self.params["app_id"]

    def _app(self, ctx: Context):
        return next((a for a in ctx.cluster.inventory.apps() if a.id == self.params["app_id"]),
                    None)

    def precheck(self, ctx: Context) -> None:
        ctx.cluster.lifecycle.removable_worker(self.params["app_id"])

    def plan(self, ctx: Context) -> Plan:
        app = self._app(ctx)
        if app is None:  # already gone (a resumed run that removed it)
            return Plan(self.name, notes=(f"node app {self.params['app_id']} is gone",))
        action = Action(Kind.DELETE, "worker", app.name, {"app_id": app.id, "drain": True})
        return Plan(self.name, tuple(impact.with_removal_impact(
            ctx, impact.loads_or_none(ctx), [action], {app.name: app})))

    def apply(self, ctx: Context, plan: Plan) -> None:
        app = ctx.cluster.lifecycle.remove_worker(self.params["app_id"], on_wait=ctx.on_wait)
        self.result = {"app_id": app.id, "app_name": app.name}
        ctx.reporter.message(f"drained and removed {app.name}")

    def verify(self, ctx: Context) -> list[str]:
        return [f"node app {self.params['app_id']} still exists"] if self._app(ctx) else []



class DoesNotFit(Conflict):
    """What an operation adds fits on no node of the cluster as it is."""

# -- Serve applications ------------------------------------------------------------------------
class AppDeploy(Operation):
    guards_serving = True  # the other apps serve after as before
    name = "app_deploy"
    action = "app.deploy"
    description = "Deploy (or re-deploy) one Serve application, keeping every other running app"
    gate_policy = ("approvals.operations.app_deploy for a new app (default: none), "
                   "app_replace for a running one (default: destructive approval)")
    may_be_destructive = True

    def __init__(self, **params):
        super().__init__(**params)
        self._ingress: str | None = None  # the ingress deployment, once Ray reports it

    @property
    def target(self) -> str:
        return self.params["entry"]["name"]

    def _desired(self) -> dict:
        """The app's Serve config, with the per-deployment overrides once the ingress
        deployment's name is known (Ray reports it for a running app)."""
        entry, overrides = dict(self.params["entry"]), self.params.get("overrides") or {}
        if overrides and self._ingress:
            entry["deployments"] = [{"name": self._ingress, **overrides}]
        return entry

    def precheck(self, ctx: Context) -> None:
        entry, policy = self.params["entry"], ctx.config.serve
        check_import_path(entry["import_path"], policy.allowed_import_prefixes)
        check_runtime_env(entry.get("runtime_env") or {}, policy, ctx.config.project_dir)
        options = (self.params.get("overrides") or {}).get("ray_actor_options") or {}
        check_actor_options(options)
        check_runtime_env(options.get("runtime_env") or {}, policy, ctx.config.project_dir,
                          field="ray_actor_options.runtime_env")
        mgmt = ctx.config.serve.management_api
        if mgmt.enabled:  # before the cluster is asked: no approval makes this right
            self._clear_of_management_api(mgmt.route_prefix)
        if ctx.cluster.inventory.head_app() is None:
            raise NoHead("cannot deploy an application")
        deployed = ctx.cluster.serve.deployed_configs()
        for name, app in deployed.items():
            if app.get("import_path") == MANAGEMENT_IMPORT_PATH and name != entry["name"]:
                self._clear_of_management_api(app.get("route_prefix") or "/")  # as it runs
            if name != entry["name"] and normalized(app.get("route_prefix") or "/") == \
                    normalized(entry["route_prefix"]):
                raise RoutePrefixTaken(f"route prefix {entry['route_prefix']!r} of "
                                       f"{entry['name']!r} is already used by application {name!r}",
                                       field="route_prefix")
        self._refuse_what_cannot_fit(ctx, deployed.get(entry["name"]))

    def _clear_of_management_api(self, management_prefix: str) -> None:
        """An app inside the management API's routes would answer its requests (approvers'
        included, with their tokens): refused, whatever an approval would say."""
        prefix = self.params["entry"]["route_prefix"]
        taken = management_paths_taken(prefix, management_prefix)
        if taken:
            raise Invalid(f"route prefix {prefix!r} would take the management API's "
                          f"{describe_taken(taken)} (at {management_prefix!r}; Serve routes a "
                          f"request to the longest matching prefix): choose a prefix outside "
                          f"its routes", field="route_prefix")

    def plan(self, ctx: Context) -> Plan:
        serve = ctx.cluster.serve
        status = serve.status()
        name = self.params["entry"]["name"]
        live = serve.deployed_configs(status).get(name)
        self._ingress = serve.ingress_of(status.get(name) or {}) if live else None
        desired = self._desired()
        key = ctx.store.audit_log.derived_key("plan-seal")
        if live is not None and same_app(live, desired):
            return Plan(self.name, notes=(f"application {name} already runs this config",))
        app = (app_action(Kind.CREATE, desired, None, key) if live is None else
               app_action(Kind.REPLACE, desired, live, key, why="re-deploys a running application"))
        loads = impact.loads_or_none(ctx)
        asked = self._replicas(loads, live)
        if asked is not None:
            demands, assumed = asked
            app, _ = impact.with_fit(loads, app, demands, replacing=name, assumed=assumed)
        moves = live is None or normalized(live.get("route_prefix") or "/") != normalized(
            desired["route_prefix"])
        return Plan(self.name, (app, *(self._traffic_taken(ctx, status) if moves else ())))

    def _replicas(self, loads, live) -> tuple[list, str | None] | None:
        """The replicas this deploy adds, as far as the request says (None: the same ones
        again, a re-deploy of a running app with no new numbers), and what is assumed."""
        name, overrides = self.params["entry"]["name"], self.params.get("overrides") or {}
        if live is not None and not overrides:
            return None
        options = overrides.get("ray_actor_options")
        assumed = None
        if options is None:
            running = [a for load in (loads or {}).values() for a in load.actors if a.app == name]
            if running:  # as its replicas ask now
                options = {"num_cpus": running[0].resources.get("CPU", 0),
                           "num_gpus": running[0].resources.get("GPU", 0)}
            else:
                assumed = ("assumes 1 CPU a replica (Serve's default): the app's code may "
                           "ask for other resources")
        return replica_demands(name, overrides.get("num_replicas") or 1, options), assumed

    def _refuse_what_cannot_fit(self, ctx: Context, live: dict | None) -> None:
        """Replicas whose resources the request states and that fit on no node now would
        sit unscheduled: refused before anything is submitted, naming what is free.
        ``live``: the app's running config, if it runs."""
        overrides = self.params.get("overrides") or {}
        if "ray_actor_options" not in overrides and "num_replicas" not in overrides:
            return
        loads = impact.loads_or_none(ctx)
        asked = self._replicas(loads, live)
        if loads is None or asked is None:
            return
        _, missing = additions(loads, asked[0], replacing=self.params["entry"]["name"])
        if missing:
            raise DoesNotFit("; ".join(s.describe("node") for s in missing)
                             + ": nothing was submitted (add nodes, or ask for less)")

    def _traffic_taken(self, ctx: Context, status: dict) -> list[Action]:
        """Apps whose requests under the new prefix this app would answer from now on (it is
        a longer prefix inside theirs): that replaces part of each, so the plan says so and
        is gated as a replacement (approvals.operations.app_replace)."""
        name, prefix = self.params["entry"]["name"], self.params["entry"]["route_prefix"]
        actions = []
        for other, app in sorted(status.items()):
            theirs = app.get("route_prefix") or "/"
            config = app.get("deployed_app_config") or {}
            if other == name or other == ctx.config.serve.management_api.name \
                    or config.get("import_path") == MANAGEMENT_IMPORT_PATH:
                continue  # the management API: its own routes were checked (precheck)
            if takes_traffic_of(prefix, theirs):
                actions.append(Action(Kind.REPLACE, "traffic", other, {
                    "route_prefix": prefix, "why": f"requests under {prefix} that {other} "
                                                   f"(at {theirs}) answers would go to {name}"}))
        return actions

    def policy_key(self, plan: Plan) -> str:
        return "app_replace" if plan.destructive else "app_deploy"

    def apply(self, ctx: Context, plan: Plan) -> None:
        serve, entry = ctx.cluster.serve, self.params["entry"]
        serve.apply(upserts=[self._desired()])
        if self.params.get("overrides") and not self._ingress:
            # the overrides name the ingress deployment, which only the code knows: Ray
            # builds the app on the cluster first, then reports it
            self._ingress = serve.wait_ingress(entry["name"], on_wait=ctx.on_wait)
            serve.apply(upserts=[self._desired()])
        self.result = {"name": entry["name"], "route_prefix": entry["route_prefix"]}

    def verify(self, ctx: Context) -> list[str]:
        """As serve_deploy verifies: the app RUNNING, every replica of it placed and running
        (within serve.verify_timeout_seconds; else the replicas that are not, with Ray's
        reason: one that fits on no node says so), and what served before still serves."""
        name, serve = self.params["entry"]["name"], ctx.cluster.serve
        if serve.status().get(name) is None:
            return [f"application {name} was not accepted by Serve"]
        seconds = ctx.config.serve.verify_timeout_seconds
        try:
            serve.wait_running([name], seconds, ctx.on_wait)
        except ServeError as e:
            return [str(e)]
        except TimedOut:
            app = serve.status().get(name) or {}
            waiting = stuck_replicas(app, 0, ctx.clock.time())
            return [f"application {name} is {app.get('status')} after {seconds:.0f}s: "
                    + ("; ".join(waiting) or (app.get("message") or "").strip()[-300:])]
        return serving_problems(ctx, {name})


class AppDelete(Operation):
    name = "app_delete"
    action = "app.delete"
    description = "Remove one Serve application (the others keep running)"
    gate_policy = "approvals.operations.app_delete (default: destructive approval)"
    may_be_destructive = True

    @property
    def target(self) -> str:
        return self.params["name"]

    def precheck(self, ctx: Context) -> None:
        if ctx.cluster.inventory.head_app() is None:
            raise NoHead("cannot delete an application")
        if self.params["name"] not in ctx.cluster.serve.status():
            raise NotFound(f"no Serve application {self.params['name']!r}")

    def plan(self, ctx: Context) -> Plan:
        name = self.params["name"]
        if name not in ctx.cluster.serve.status():
            return Plan(self.name, notes=(f"application {name} is gone",))
        return Plan(self.name, (Action(Kind.DELETE, "app", name),))

    def apply(self, ctx: Context, plan: Plan) -> None:
        ctx.cluster.serve.apply(removes=[self.params["name"]])
        self.result = {"name": self.params["name"]}


OPERATIONS: dict[str, type[Operation]] = {
    op.name: op for op in (NodeAdd, NodeRemove, AppDeploy, AppDelete, HostCleanup)}


def gate_names() -> tuple[str, ...]:
    """Every name an approval can be given at: the checkpoints and the operations."""
    from checkpoints import BY_NAME
    return (*BY_NAME, *OPERATIONS)


def from_options(options: dict) -> Operation:
    """The operation a run was started for (to resume it)."""
    spec = options.get("operation") or {}
    if spec.get("name") not in OPERATIONS:
        raise Invalid(f"run options name no known operation: {spec.get('name')!r}")
    return OPERATIONS[spec["name"]](**spec.get("params", {}))


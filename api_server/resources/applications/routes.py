from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.resources.applications.schemas import (
    AppDeletedSchema,
    AppDeployedSchema,
    AppDetailSchema,
    AppListSchema,
    DeployAppSchema,
)
from api_server.resources.common import run_operation, services
from checkpoints.operations import AppDelete, AppDeploy
from cluster.config import ServeApp
from core.errors import Conflict, Invalid, NotFound, Unavailable

blp = Blueprint("applications", __name__, url_prefix="/api/v1/applications",
                description="Ray Serve applications: deploy (merged with what runs), list, remove")


def summary(name: str, app: dict) -> dict:
    deployments = app.get("deployments") or {}
    return {"name": name, "status": app.get("status", "UNKNOWN"),
            "route_prefix": app.get("route_prefix"),
            "num_replicas": sum(d.get("target_num_replicas") or len(d.get("replicas") or [])
                                for d in deployments.values()),
            "message": app.get("message") or "",
            "last_deployed_time": app.get("last_deployed_time_s"),
            "last_deployed_at": app.get("last_deployed_time_s")}  # dumped as ISO 8601


def detail(name: str, app: dict) -> dict:
    deployments = [{"name": dep_name, "status": d.get("status", "UNKNOWN"),
                    "message": d.get("message") or "",
                    "num_replicas": d.get("target_num_replicas") or len(d.get("replicas") or []),
                    "replicas": [{"replica_id": r.get("replica_id"), "state": r.get("state"),
                                  "node_ip": r.get("node_ip")} for r in d.get("replicas") or []]}
                   for dep_name, d in (app.get("deployments") or {}).items()]
    config = app.get("deployed_app_config")  # its schema redacts the secrets (api_server.redaction)
    return {**summary(name, app), "deployments": deployments,
            "deployed_config": config}


def live_app_or_404(name: str) -> dict:
    svc = services()
    apps = svc.cluster.serve.status()
    if name not in apps:
        raise NotFound(f"no Serve application {name!r}")
    return apps[name]


@blp.route("")
class Applications(MethodView):
    @blp.response(200, AppListSchema)
    def get(self):
        """Serve applications with their status"""
        apps = services().serve_status()
        return {"applications": [summary(n, a) for n, a in sorted(apps.items())],
                "total_applications": len(apps)}

    @blp.arguments(DeployAppSchema)
    @blp.response(202, AppDeployedSchema)
    @raises(blp, Invalid, Conflict, Unavailable, conflict="the route prefix is used by another "
                                                          "application, there is no head, or "
                                                          "the replicas asked for fit on no node")
    def post(self, body):
        """Deploy one application, keeping every other running app (202: it deploys
        asynchronously; follow it with GET /applications/{name}). Re-deploying a running
        app waits for an approval (approvals.operations.app_replace): `pending` says how."""
        entry = ServeApp(name=body["name"], import_path=body["import_path"],
                         route_prefix=body["route_prefix"], args=body.get("args") or {},
                         runtime_env=body.get("runtime_env") or {}).serve_config()
        overrides = {k: body[k] for k in ("num_replicas", "ray_actor_options") if k in body}
        answer, _ = run_operation(AppDeploy(entry=entry, overrides=overrides))
        return {"name": entry["name"], "route_prefix": entry["route_prefix"], **answer}


@blp.route("/<name>")
class Application(MethodView):
    @blp.response(200, AppDetailSchema)
    @raises(blp, NotFound, Conflict, notfound="no such application",
            conflict="the cluster has no running head")
    def get(self, name):
        """One application: deployments, replicas and status messages"""
        return detail(name, live_app_or_404(name))

    @blp.response(200, AppDeletedSchema)
    @blp.alt_response(202, schema=AppDeletedSchema,
                      description="the removal waits for an approval (approvals.operations."
                                  "app_delete, by default): `pending` says how to give it")
    @raises(blp, NotFound, Conflict, Unavailable, notfound="no such application",
            conflict="a run holds the cluster lease")
    def delete(self, name):
        """Remove this application only (the others keep running)"""
        answer, status = run_operation(AppDelete(name=name))
        return {"name": name, **answer}, status or 200

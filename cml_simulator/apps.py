"""Applications of the simulated workspace (a mixin of Workspace, see state.py).

Each application is a real local process with its own loopback address; it reports
APPLICATION_STARTING for ``app_start_delay`` seconds after it was started.
"""
from __future__ import annotations

import json
import re
import time

from cluster.platform import FAILED, RUNNING, STARTING, STOPPED, AppSpec, PlatformError
from cluster.ports import pick_port
from cml_simulator.common import USER, SimError, cml_id, now_iso, to_int

SUBDOMAIN_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class AppsMixin:
    def create_app(self, project_id: str, body: dict) -> dict:
        project = self.project(project_id)
        for key in ("name", "subdomain", "script"):
            if not body.get(key):
                raise SimError(400, f"{key} is required")
        if not SUBDOMAIN_RE.match(body["subdomain"]):
            raise SimError(400, f"invalid subdomain {body['subdomain']!r}")
        with self.lock:
            if any(a["subdomain"] == body["subdomain"] for a in self.apps.values()):
                raise SimError(409, f"subdomain {body['subdomain']!r} is already taken")
            app_id = cml_id()
            port = pick_port(0, {a["port"] for a in self.apps.values()})
            env = {**project.environment, **dict(body.get("environment") or {}),
                   "CDSW_APP_PORT": str(port), "CDSW_READONLY_PORT": str(port)}
            record = {"id": app_id, "project_id": project_id, "name": body["name"],
                      "subdomain": body["subdomain"], "description": body.get("description", ""),
                      "script": body["script"], "cpu": float(body.get("cpu") or 1),
                      "memory": float(body.get("memory") or 1),
                      "nvidia_gpu": to_int(body.get("nvidia_gpu") or 0), "environment": env,
                      "runtime_identifier": body.get("runtime_identifier", ""),
                      "bypass_authentication": bool(body.get("bypass_authentication", False)),
                      "created_at": time.time(), "port": port, "state": "starting",
                      "local_id": None}
            self.apps[app_id] = record
        self._start_app(project, record)
        return self.app_api(record)

    def _start_app(self, project, record: dict) -> None:
        spec = AppSpec(name=f"{record['subdomain']}-{record['id']}", script=record["script"],
                       cpu=record["cpu"], memory=record["memory"], gpus=record["nvidia_gpu"],
                       env={k: str(v) for k, v in record["environment"].items()})
        try:
            local = project.platform.create_app(spec)
        except PlatformError:  # CML accepts the app; it fails when its script is missing
            record.update(local_id=None, state="failed", started_at=time.time())
            return
        record.update(local_id=local.id, state="starting", started_at=time.time())

    def app(self, project_id: str, app_id: str) -> dict:
        record = self.apps.get(app_id)
        if record is None or record["project_id"] != project_id:
            raise SimError(404, f"application {app_id} not found")
        return record

    def app_status(self, record: dict) -> str:
        if record["state"] == "stopped":
            return "APPLICATION_STOPPED"
        if record["state"] == "failed":
            return "APPLICATION_FAILED"
        local = self.project(record["project_id"]).platform.get_app(record["local_id"])
        if local.status == FAILED:
            return "APPLICATION_FAILED"
        if local.status == STOPPED:
            return "APPLICATION_STOPPED"
        if local.status in (STARTING, RUNNING):
            started = record.get("started_at", record["created_at"])
            return ("APPLICATION_STARTING" if time.time() - started < self.app_start_delay
                    else "APPLICATION_RUNNING")
        return "APPLICATION_UNKNOWN"

    def stop_app(self, project_id: str, app_id: str) -> dict:
        record = self.app(project_id, app_id)
        if record["local_id"]:
            self.project(project_id).platform.delete_app(record["local_id"])
        record.update(state="stopped", stopped_at=time.time(), local_id=None)
        return self.app_api(record)

    def restart_app(self, project_id: str, app_id: str) -> dict:
        record = self.app(project_id, app_id)
        if record["local_id"]:
            self.project(project_id).platform.delete_app(record["local_id"])
        self._start_app(self.project(project_id), record)
        return self.app_api(record)

    def delete_app(self, project_id: str, app_id: str) -> None:
        self.stop_app(project_id, app_id)
        with self.lock:
            self.apps.pop(app_id, None)

    def update_app(self, project_id: str, app_id: str, body: dict) -> dict:
        record = self.app(project_id, app_id)
        for key in ("name", "description", "cpu", "memory", "nvidia_gpu", "script"):
            if key in body and body[key] not in (None, ""):
                record[key] = type(record[key])(body[key])
        if "environment" in body:
            env = body["environment"]
            record["environment"].update(json.loads(env) if isinstance(env, str) else env)
        return self.app_api(record)

    def app_api(self, r: dict) -> dict:
        status = self.app_status(r)
        public_env = {k: v for k, v in r["environment"].items() if not k.startswith("CDSW_")}
        out = {"id": r["id"], "name": r["name"], "subdomain": r["subdomain"],
               "description": r["description"], "script": r["script"], "cpu": r["cpu"],
               "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"], "status": status,
               "environment": json.dumps(public_env), "runtime_identifier": r["runtime_identifier"],
               "bypass_authentication": r["bypass_authentication"], "creator": dict(USER),
               "created_at": now_iso(r["created_at"]), "updated_at": now_iso(r["created_at"])}
        if status == "APPLICATION_RUNNING":
            out["running_at"] = now_iso(r.get("started_at"))
        if r.get("stopped_at"):
            out["stopped_at"] = now_iso(r["stopped_at"])
        return out

"""Applications of the simulated workspace (a mixin of Workspace, see state.py).

Each application is a real local process with its own loopback address. As in CML, starting
and stopping take time: an app is APPLICATION_STARTING for ``app_start_delay`` seconds after
a create or restart, then APPLICATION_RUNNING (``running_at``); ``:stop`` answers
APPLICATION_STOPPING and the app is APPLICATION_STOPPED (``stopped_at``) once its process is
gone and ``app_stop_delay`` has passed. A PATCH changes the record; a running process keeps the
environment it was started with until the next restart.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time

from cluster.platforms.records import FAILED, STOPPED, AppSpec
from cluster.ports import pick_port
from cml_simulator.common import (
    USER,
    SimError,
    apply_patch,
    check_runtime,
    cml_id,
    now_iso,
    patched_environment,
    to_int,
)
from cml_simulator.pods import APP_PORT

log = logging.getLogger(__name__)
SUBDOMAIN_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
APP_PATCH = {"name": str, "description": str, "script": str, "cpu": float, "memory": float,
             "nvidia_gpu": to_int, "runtime_identifier": str, "bypass_authentication": bool}
SETTLED = {"stopping": "APPLICATION_STOPPING", "stopped": "APPLICATION_STOPPED",
           "failed": "APPLICATION_FAILED"}


class AppsMixin:
    def create_app(self, project_id: str, body: dict) -> dict:
        project = self.project(project_id)
        for key in ("name", "subdomain", "script"):
            if not body.get(key):
                raise SimError(400, f"{key} is required")
        runtime = check_runtime(body.get("runtime_identifier"), project.engine_type,
                                f"application {body['name']!r}")
        with self.lock:
            self._check_subdomain(body["subdomain"])
            # pods have a network each: one port number serves all (as on CML)
            port = APP_PORT if self.pods else pick_port(0, {a["port"] for a in self.apps.values()})
            now = time.time()
            record = {"id": cml_id(), "project_id": project_id, "name": body["name"],
                      "subdomain": body["subdomain"], "description": body.get("description") or "",
                      "script": body["script"], "cpu": float(body.get("cpu") or 1),
                      "memory": float(body.get("memory") or 1),
                      "nvidia_gpu": to_int(body.get("nvidia_gpu") or 0),
                      # creating an app copies the project's environment into it
                      "environment": {**project.environment, **dict(body.get("environment") or {})},
                      "runtime_identifier": runtime,
                      "bypass_authentication": bool(body.get("bypass_authentication", False)),
                      "created_at": now, "updated_at": now, "port": port, "local_id": None,
                      "state": "starting", "starting_at": now, "running_at": None,
                      "stopped_at": None, "stop": None}
            self.apps[record["id"]] = record
        if self.pods:  # its public URL: https://<subdomain>.<domain>, served by the edge
            self.pods.name(f"{record['subdomain']}.{self.domain}")
        self._start_app(project, record)
        return self.app_api(record)

    def _check_subdomain(self, subdomain: str, app_id: str | None = None) -> None:
        if not SUBDOMAIN_RE.match(subdomain):
            raise SimError(400, f"invalid subdomain {subdomain!r}")
        if any(a["subdomain"] == subdomain and a["id"] != app_id for a in self.apps.values()):
            raise SimError(409, f"subdomain {subdomain!r} is already taken")

    def _start_app(self, project, record: dict) -> None:
        env = {**record["environment"], "CDSW_APP_PORT": str(record["port"]),
               "CDSW_READONLY_PORT": str(record["port"])}
        spec = AppSpec(name=f"{record['subdomain']}-{record['id']}", script=record["script"],
                       cpu=record["cpu"], memory=record["memory"], gpus=record["nvidia_gpu"],
                       env={k: str(v) for k, v in env.items()})
        # a new start: the previous one's running_at and stopped_at no longer apply
        record.update(starting_at=time.time(), running_at=None, stopped_at=None, stop=None)
        try:
            local = project.platform.create_app(spec)
        except Exception as e:  # CML accepts the app; it fails when it cannot start (no
            # script, or this machine ran out of something): never left STARTING for ever
            log.warning("application %s failed to start: %s", record["name"], e)
            record.update(local_id=None, state="failed")
            return
        record.update(local_id=local.id, state="starting")

    def app(self, project_id: str, app_id: str) -> dict:
        record = self.apps.get(app_id)
        if record is None or record["project_id"] != project_id:
            raise SimError(404, f"application {app_id} not found")
        return record

    def app_address(self, record: dict) -> str | None:
        """The address of the app's process (its pod's, in pods mode), while it has one."""
        local_id = record.get("local_id")
        if local_id is None:
            return None
        try:
            return self.project(record["project_id"]).platform.get_app(local_id).ip
        except Exception:  # the project or the process record went meanwhile
            return None

    def app_status(self, record: dict) -> str:
        with self.lock:
            if record["state"] in SETTLED:
                return SETTLED[record["state"]]
            if record["local_id"] is None:  # listed while its process is being started
                return "APPLICATION_STARTING"
            local = self.project(record["project_id"]).platform.get_app(record["local_id"])
            if local.status in (FAILED, STOPPED):  # its process ended by itself
                record["state"] = "failed"
                return "APPLICATION_FAILED"
            running_from = record["starting_at"] + self.app_start_delay
            if time.time() < running_from:
                return "APPLICATION_STARTING"
            if record["running_at"] is None:
                record["running_at"] = running_from  # reached then; recorded once
            return "APPLICATION_RUNNING"

    def stop_app(self, project_id: str, app_id: str) -> dict:
        """Answers at once (APPLICATION_STOPPING); the process is stopped in the background."""
        record = self.app(project_id, app_id)
        with self.lock:
            if record["state"] not in ("stopping", "stopped"):
                local_id, now = record["local_id"], time.time()
                record.update(state="stopping", local_id=None, updated_at=now)
                stop = record["stop"] = threading.Thread(
                    target=self._finish_stop, args=(record, local_id, now), daemon=True,
                    name=f"stop-{app_id}")
                stop.start()
        return self.app_api(record)

    def _finish_stop(self, record: dict, local_id: str | None, since: float) -> None:
        if local_id:
            try:
                self.project(record["project_id"]).platform.delete_app(local_id)
            except Exception:  # the project went away meanwhile: nothing left to stop
                pass
        self._stop.wait(max(0.0, since + self.app_stop_delay - time.time()))
        with self.lock:
            if record["stop"] is threading.current_thread() and record["state"] == "stopping":
                record.update(state="stopped", stopped_at=time.time())

    def _stop_now(self, record: dict, grace_seconds: float = 5.0) -> None:
        """Stop the app's process before returning (a pending ``:stop`` is waited for)."""
        if record.get("stop") is not None:
            record["stop"].join()
        with self.lock:
            local_id, record["local_id"] = record["local_id"], None
        if local_id:
            platform = self.project(record["project_id"]).platform
            platform.stop_app(local_id, grace_seconds)
            platform.delete_app(local_id)

    def restart_app(self, project_id: str, app_id: str) -> dict:
        record = self.app(project_id, app_id)
        self._stop_now(record)
        record["updated_at"] = time.time()
        self._start_app(self.project(project_id), record)
        return self.app_api(record)

    def delete_app(self, project_id: str, app_id: str) -> None:
        self._stop_now(self.app(project_id, app_id))
        with self.lock:
            self.apps.pop(app_id, None)

    def update_app(self, project_id: str, app_id: str, body: dict) -> dict:
        """PATCH: the fields the body carries are set, ``environment`` replaced as a whole."""
        record = self.app(project_id, app_id)
        if body.get("runtime_identifier"):
            check_runtime(body["runtime_identifier"], self.project(project_id).engine_type,
                          f"application {record['name']!r}")
        env = patched_environment(body)
        with self.lock:
            if body.get("subdomain"):
                self._check_subdomain(body["subdomain"], app_id)
                record["subdomain"] = body["subdomain"]
            apply_patch(record, body, APP_PATCH)
            if env is not None:
                record["environment"] = env
            record["updated_at"] = time.time()
        return self.app_api(record)

    def app_api(self, r: dict) -> dict:
        status = self.app_status(r)
        out = {"id": r["id"], "name": r["name"], "subdomain": r["subdomain"],
               "description": r["description"], "script": r["script"], "cpu": r["cpu"],
               "memory": r["memory"], "nvidia_gpu": r["nvidia_gpu"], "status": status,
               "environment": json.dumps(r["environment"]), "runtime_identifier": r["runtime_identifier"],
               "bypass_authentication": r["bypass_authentication"], "creator": dict(USER),
               "created_at": now_iso(r["created_at"]), "updated_at": now_iso(r["updated_at"])}
        for key in ("starting_at", "running_at", "stopped_at"):  # only once reached
            if r.get(key):
                out[key] = now_iso(r[key])
        return out

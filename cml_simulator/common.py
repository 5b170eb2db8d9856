"""What every part of the simulator shares: its error, timestamps, ids, the one user and the
runtime catalogue."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime


class SimError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def now_iso(t: float | None = None) -> str:
    """RFC 3339 in UTC, always with microseconds: a fixed width keeps string order = time
    order, which ``sort=created_at`` relies on."""
    stamp = datetime.fromtimestamp(time.time() if t is None else t, UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def cml_id() -> str:
    h = uuid.uuid4().hex
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


def to_int(value) -> int:
    return int(float(value))  # bodies.check_body lets 60, "60" and 60.0 through alike


# the API key belongs to one user; CML names it as creator and owner (ShortUser)
USER = {"username": "simulator", "name": "CML Simulator", "email": "simulator@ml.localhost"}

RUNTIMES = [{"image_identifier": "docker.repository.cloudera.com/cloudera/cdsw/"
                                 "ml-runtime-pbj-workbench-python3.11-standard:2025.09.1-b5",
             "editor": "PBJ Workbench", "kernel": "Python 3.11", "edition": "Standard",
             "description": "Standard edition Python runtime", "full_version": "2025.09.1-b5",
             "status": "ENABLED"}]

# CreateProject's default_project_engine_type: blank means the site-wide default, which is
# ML Runtimes on current workspaces (legacy engines are deprecated)
ENGINE_TYPES = ("ml_runtime", "legacy_engine")
SITE_ENGINE_TYPE = "ml_runtime"


def check_runtime(identifier: str | None, engine_type: str, what: str) -> str:
    """The runtime a job or application of a project with ``engine_type`` runs on: ML Runtimes
    projects must name one the workspace has ("Must be set if using ML Runtimes")."""
    if engine_type != "ml_runtime":
        return identifier or ""
    if not identifier:
        raise SimError(400, f"runtime_identifier is required to create {what} in a project "
                            f"that uses ML Runtimes (see GET /api/v2/runtimes)")
    if identifier not in {r["image_identifier"] for r in RUNTIMES}:
        raise SimError(400, f"runtime {identifier!r} is not available in this workspace "
                            f"(see GET /api/v2/runtimes)")
    return identifier


# -- PATCH ----------------------------------------------------------------------------------
# UpdateJob and UpdateApplication take the resource itself: a field in the body is set, a
# field left out (or null) is kept. An empty string clears a free-text field (arguments,
# description) but leaves a required one (name, script, ...) as it was.
KEEP_IF_EMPTY = {"name", "script", "subdomain", "runtime_identifier", "parent_id"}


def apply_patch(record: dict, body: dict, fields: dict) -> None:
    """Set each of ``fields`` (name -> converter) that ``body`` carries."""
    for key, convert in fields.items():
        value = body.get(key)
        if value is None or (value == "" and key in KEEP_IF_EMPTY):
            continue
        record[key] = convert(value)


def patched_environment(body: dict) -> dict | None:
    """The ``environment`` of a PATCH body: a JSON-encoded string, as in the resource. It
    replaces the whole map (``"{}"`` empties it); ``""`` or no field keeps the current one."""
    raw = body.get("environment")
    if raw in (None, ""):
        return None
    try:
        env = json.loads(raw)
    except ValueError:
        env = None
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise SimError(400, "environment must be a JSON-encoded object of string values, "
                            'e.g. "{\\"KEY\\": \\"value\\"}"')
    return env

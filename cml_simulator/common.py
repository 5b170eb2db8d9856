"""What every part of the simulator shares: its error, timestamps, ids, the one user and the
runtime catalogue."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone


class SimError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def now_iso(t: float | None = None) -> str:
    """RFC 3339 in UTC, always with microseconds: a fixed width keeps string order = time
    order, which ``sort=created_at`` relies on."""
    stamp = datetime.fromtimestamp(time.time() if t is None else t, timezone.utc)
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



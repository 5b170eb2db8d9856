"""What every part of the simulator shares: its error, timestamps, ids and the runtime
catalogue."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone


class SimError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t or time.time(), timezone.utc).isoformat().replace("+00:00", "Z")


def cml_id() -> str:
    h = uuid.uuid4().hex
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


RUNTIMES = [{"image_identifier": "docker.repository.cloudera.com/cloudera/cdsw/"
                                 "ml-runtime-pbj-workbench-python3.11-standard:2025.09.1-b5",
             "editor": "PBJ Workbench", "kernel": "Python 3.11", "edition": "Standard",
             "description": "Standard edition Python runtime", "full_version": "2025.09.1-b5",
             "status": "ENABLED"}]



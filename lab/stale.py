"""Labs left behind (a killed test run): found by their names, removed when their owner died."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from lab.core import Lab, _alive
from lab.machine import LAB_ROOT, PREFIX


def list_labs(root: Path | str | None = None) -> list[str]:
    """Ids of the labs whose namespaces exist on this machine (found by name prefix)."""
    found = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    ids = {m.group(1) for m in re.finditer(rf"^{PREFIX}([0-9a-f]{{6}})-", found, re.M)}
    base = Path(root or LAB_ROOT)
    ids |= {p.name[len(PREFIX):] for p in base.glob(f"{PREFIX}*") if (p / "lab.json").exists()}
    return sorted(ids)


def cleanup_stale(root: Path | str | None = None, everything: bool = False) -> list[str]:
    """Remove the labs whose owner died (a killed test run) or, with ``everything``, all
    labs; returns their ids. A lab without a record left (its directory gone) is removed
    from its namespaces alone."""
    removed = []
    base = Path(root or LAB_ROOT)
    for lab_id in list_labs(base):
        lab_dir = base / f"{PREFIX}{lab_id}"
        if (lab_dir / "lab.json").exists():
            lab = Lab(lab_dir)
            owner = lab.state["owner"]
            if everything or (owner is not None and not _alive(owner)):
                lab.down()
                removed.append(lab_id)
            continue
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in names.splitlines():
            netns = line.split()[0] if line.split() else ""
            if netns.startswith(f"{PREFIX}{lab_id}-"):
                _kill_orphan_netns(netns)
        removed.append(lab_id)
    return removed


def _kill_orphan_netns(netns: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    for pid in map(int, pids.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)



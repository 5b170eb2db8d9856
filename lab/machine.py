"""What labs need of this machine: root, iproute2 and util-linux, network namespaces; and
where labs are found (their names' prefix, the directory of their records)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PREFIX = "rdlab-"
# Every lab's record lives here, whatever TMPDIR says: stale labs are found by looking here.
LAB_ROOT = Path("/tmp")


def available() -> str | None:
    """Why labs cannot be made here (one line), or None when they can."""
    if os.geteuid() != 0:
        return "the lab needs root (network and mount namespaces)"
    for tool in ("ip", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"the lab needs the {tool!r} command (iproute2 / util-linux)"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"network namespaces cannot be made here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None

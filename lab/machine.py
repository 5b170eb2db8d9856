"""What labs need of this machine: root, iproute2 and util-linux, network namespaces; and
where labs are found (their names' prefix, the directory of their records)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PREFIX = "rdlab-"
ROOT = Path(__file__).resolve().parents[1]  # the checkout (the image every host shares)
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


def image_in_tmp() -> list[str]:
    """What a host's private /tmp holds: nothing but the shared image (the checkout and the
    interpreter stay visible to every host), when it lives under /tmp (a checkout there).
    Give it as ``add_host(..., keep=...)`` to a host that runs the checkout's code."""
    return sorted({Path(p).relative_to("/tmp").parts[0] for p in (ROOT, sys.prefix)
                   if Path(p).is_relative_to("/tmp")})

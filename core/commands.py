"""The commands this tool tells people to run, built in one place: what a gate prints, what
the API answers and what a notification carries name the same command."""
from __future__ import annotations

import shlex


def deploy_master(*args: str, config: str | None = None, state_dir: str | None = None,
                  server: str | None = None) -> str:
    """``python deploy_master.py [--config C] [--state-dir D] [--server URL] ARGS``, quoted."""
    parts = ["python", "deploy_master.py"]
    for flag, value in (("--config", config), ("--state-dir", state_dir), ("--server", server)):
        if value:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in [*parts, *args])


def approve_command(checkpoint: str, destructive: bool, breaking: bool = False,
                    **where) -> str:
    """The command that approves ``checkpoint``, with the acknowledgements its gate needs
    (``where``: config, state_dir, server, as ``deploy_master`` takes them)."""
    return deploy_master("approve", checkpoint,
                         *(["--acknowledge-risks"] if destructive else []),
                         *(["--acknowledge-breaking"] if breaking else []), **where)

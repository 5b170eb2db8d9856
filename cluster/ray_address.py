"""An explicit Ray address (``RAY_ADDRESS``, Ray's standard variable): the cluster the API
and ``python -m validation`` read, instead of the head the platform lists. Three forms:

    host:port          the head's GCS (what ``ray start --head`` prints)
    ray://host:port    the Ray Client server on the head (port 10001 when left out)
    http(s)://host:port  the dashboard (what ``ray job submit`` takes; 8265 when left out)

This tool reads Ray through the dashboard's REST API, so the first two are resolved to the
dashboard address the cluster published in its GCS. That takes Ray's own client code, run
in a short-lived child process (``python -m cluster.ray_address ADDRESS``): the API server
and validation never import Ray, and the cluster's token is only in the child's
environment. ``auto`` and ``local`` (a cluster in Ray's default temp dir) are refused: this
tool's clusters keep their own temp dirs, so say where the head is.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cluster.dashboard import DashboardError
from core.errors import Invalid

ENV = "RAY_ADDRESS"
RESOLVE_SECONDS = 40.0  # a Ray Client connection starts a server process on the head
ROOT = Path(__file__).resolve().parents[1]


class BadRayAddress(Invalid):
    """RAY_ADDRESS is not an address this tool can reach a cluster through."""


class RayAddressUnreachable(DashboardError):
    """Nothing at RAY_ADDRESS told where its dashboard is (so there is no dashboard to ask)."""


@dataclass(frozen=True)
class RayAddress:
    text: str  # as given
    kind: str  # gcs | client | dashboard
    host: str
    port: int
    scheme: str = ""  # http or https (dashboard addresses)
    # Ray's token for that cluster (RAY_AUTH_TOKEN), when it is not the config's own
    token: str | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, token: str | None = None) -> RayAddress:
        raw = (text or "").strip()
        if raw.lower() in ("auto", "local", ""):
            raise BadRayAddress(
                f"{ENV}={raw or '(empty)'}: say where the head is (host:port of its GCS, "
                f"ray://host:port or the dashboard's http://host:port); 'auto' and 'local' "
                f"find clusters in Ray's default temp dir, which this tool does not use",
                field=ENV)
        scheme, _, rest = raw.rpartition("://")
        kind, default_port = {"": ("gcs", None), "ray": ("client", 10001),
                              "http": ("dashboard", 8265),
                              "https": ("dashboard", 8265)}.get(scheme.lower(), (None, None))
        if kind is None:
            raise BadRayAddress(f"{ENV}={raw}: unknown scheme {scheme!r} (host:port, ray:// or "
                                f"http(s)://)", field=ENV)
        try:
            parts = urlsplit(f"//{rest}")
            host, port = parts.hostname, parts.port or default_port
        except ValueError:
            host = port = None
        if not host or port is None or parts.path.strip("/") or parts.username:
            raise BadRayAddress(f"{ENV}={raw}: not an address (expected "
                                f"{'host:port' if kind == 'gcs' else scheme + '://host:port'})",
                                field=ENV)
        return cls(raw, kind, host, port, scheme.lower() if kind == "dashboard" else "", token)

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def gcs_address(self) -> str | None:
        """host:port of the GCS, when that is what was given."""
        return self.hostport if self.kind == "gcs" else None


def from_environ(environ) -> RayAddress | None:
    """RAY_ADDRESS (with RAY_AUTH_TOKEN, Ray's own variable for the token) or None."""
    text = environ.get(ENV)
    if text is None or not text.strip():
        return None
    return RayAddress.parse(text, token=environ.get("RAY_AUTH_TOKEN") or None)


def resolve_dashboard(address: RayAddress, token: str | None,
                      timeout: float = RESOLVE_SECONDS) -> str:
    """The dashboard's URL (``http://host:port``) of the cluster at ``address``."""
    if address.kind == "dashboard":
        return f"{address.scheme}://{address.hostport}"
    try:  # a typo'd address fails here at once, not after the child's Ray gives up
        socket.create_connection((address.host, address.port), timeout=3).close()
    except OSError as e:
        raise RayAddressUnreachable(f"{ENV}={address.text}: nothing answers at "
                                    f"{address.hostport} ({e.strerror or type(e).__name__})"
                                    ) from None
    from cluster.platforms.local import inherited_env
    env = {**inherited_env(), "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_gcs_rpc_server_reconnect_timeout_s": "5"}
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    # A Ray Client connection now and then hangs while the head starts its server for it (seen
    # about one in five in the tests); a second try gets through: two tries share the time.
    tries = 2 if address.kind == "client" else 1
    for _ in range(tries):
        answered, out, err = _child(address.text, env, timeout / tries)
        if answered is not None:
            break
    else:
        raise RayAddressUnreachable(f"{ENV}={address.text}: no Ray cluster answered within "
                                    f"{timeout:.0f}s") from None
    try:
        answer = json.loads(out.strip().splitlines()[-1]) if answered == 0 else None
    except (ValueError, IndexError):
        answer = None
    if not answer or not answer.get("dashboard"):
        reason = (err.strip().splitlines() or ["no answer"])[-1][:300]
        raise RayAddressUnreachable(f"{ENV}={address.text}: the cluster's dashboard address "
                                    f"is unknown ({reason})")
    url = answer["dashboard"]
    return url if "://" in url else f"http://{url}"


def _child(text: str, env: dict, timeout: float) -> tuple[int | None, str, str]:
    """Run ``python -m cluster.ray_address`` for ``text``: (exit code or None when it did not
    end in time, stdout, stderr). Its session is stopped either way."""
    from cluster import processes
    proc = subprocess.Popen([sys.executable, "-m", "cluster.ray_address", text],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        processes.stop_session(proc.pid, grace_seconds=1)
        proc.communicate()
        return None, "", ""
    finally:
        if proc.poll() is None:  # never leave the child (or a Ray Client session) behind
            processes.stop_session(proc.pid, grace_seconds=1)


def _ask_ray(text: str) -> str:
    """In the child: where the cluster at ``text`` says its dashboard is."""
    address = RayAddress.parse(text)
    if address.kind == "client":
        import ray
        context = ray.init(address=address.text, logging_level="ERROR",
                           log_to_driver=False)
        try:
            return context.dashboard_url
        finally:
            ray.shutdown()
    from ray._raylet import GcsClient
    url = GcsClient(address=address.hostport).internal_kv_get(b"webui:url", b"dashboard")
    if not url:
        raise RuntimeError("the cluster has no dashboard")
    return url.decode()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m cluster.ray_address ADDRESS\n")
        return 2
    os.environ.pop(ENV, None)
    try:
        dashboard = _ask_ray(argv[0])
    except Exception as e:  # one line for the parent's message: never a trace
        lines = str(e).strip().splitlines()
        sys.stderr.write(f"{type(e).__name__}: {lines[-1] if lines else ''}\n")
        return 1
    sys.stdout.write(json.dumps({"dashboard": dashboard}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The management API as a Ray Serve application, so a cluster carries its own endpoint.

A Flask object cannot be pickled into a replica, so the replica makes the Flask app itself
(``__serve_build_asgi_app__``, after its constructor), wrapped by a2wsgi as ASGI (asgiref's
WsgiToAsgi breaks on the lifespan scope and serves requests on one thread).

Where a control plane runs the cluster, the replica's only ``args`` is where that control
plane answers (``forward_to``): it forwards every request there and holds no authority of
its own. Embedded (the CLI runs the cluster), everything the replica needs arrives as the
Serve app's ``args`` (``build(args)``): the config file, state dir and base dir the CLI
uses, the address the proxy listens on, the settings it enforces with their digest, and the
API tokens as digests only (scrypt, salted: ``checkpoints.tokens``), never in a process
environment or command line. A digest lets the replica check a token; it cannot be turned
back into one but by guessing, at scrypt's cost per guess. A replica refuses to start when
its config no longer holds the settings it was deployed with (the deploy that plans that
change replaces it), or when its proxy listens on a non-loopback address without tokens.

The replica answers on ``REPLICA_THREADS`` threads (a2wsgi's pool) and an event stream holds
one for as long as it is open, so at most half of them stream, as under gunicorn: the
others keep answering ``/health`` and the API. That holds when it forwards too (a stream
forwarded holds a thread here as well as one of the control plane's).
"""
from __future__ import annotations

import threading

from ray import serve

from cluster.serve import MANAGEMENT_DEPLOYMENT

REPLICA_THREADS = 10  # the replica's WSGI threads: every request, event streams included
STREAMS = max(1, REPLICA_THREADS // 2)  # of which event streams may hold at most these


class BoundedStreams:
    """At most ``limit`` event streams at once through ``app`` (a WSGI app); one more is
    answered 429 with Retry-After at once, so the streams never take every thread."""

    def __init__(self, app, limit: int):
        self.app = app
        self.slots = threading.BoundedSemaphore(limit)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or not environ.get("PATH_INFO", "").endswith(
                "/events"):
            return self.app(environ, start_response)
        if not self.slots.acquire(blocking=False):
            from api_server.forwarding import error
            return error(start_response, 429, "this server has its event streams open already; "
                         "retry shortly (or poll GET /api/v1/deployments/{id})",
                         [("Retry-After", "5")])
        try:
            return Releasing(self.app(environ, start_response), self.slots.release)
        except BaseException:
            self.slots.release()
            raise


class Releasing:
    """A WSGI body that gives its slot back once closed (however the stream ends)."""

    def __init__(self, body, release):
        self.body, self._release, self._released = body, release, threading.Event()

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            getattr(self.body, "close", lambda: None)()
        finally:
            if not self._released.is_set():
                self._released.set()
                self._release()


def asgi_app(args: dict):
    from a2wsgi import WSGIMiddleware

    if args.get("forward_to"):  # a control plane runs the cluster: it answers everything
        from api_server.forwarding import Forwarder
        return WSGIMiddleware(BoundedStreams(Forwarder(args["forward_to"]), STREAMS),
                              workers=REPLICA_THREADS)

    from api_server import ApiSetupError, create_app
    from api_server.settings import Settings
    from checkpoints.access import Principals
    from cluster.config import load_config
    from cluster.serve import enforced_settings, settings_digest

    settings = Settings(config_path=args["config"], state_dir=args["state_dir"],
                        base_dir=args["base_dir"], sse_process_limit=STREAMS)
    config = load_config(settings.config_path, state_dir_override=settings.state_dir,
                         base_dir=settings.base_dir)
    planned = args.get("settings_digest")
    if planned and settings_digest(enforced_settings(config)) != planned:
        raise ApiSetupError(f"the config {settings.config_path} no longer holds the settings "
                            f"this app was deployed to enforce (digest {planned}): it changed "
                            f"since; run the deploy again, which plans the change and "
                            f"replaces this app")
    principals = Principals(digests=args.get("principals") or [])  # each names its salt
    return WSGIMiddleware(create_app(settings, config, principals=principals,
                                     listen_host=args["listen_host"]), workers=REPLICA_THREADS)


@serve.deployment(name=MANAGEMENT_DEPLOYMENT, num_replicas=1, ray_actor_options={"num_cpus": 0.1})
@serve.ingress()
class ManagementAPI:
    def __init__(self, args: dict):
        self.args = args

    def __serve_build_asgi_app__(self):
        return asgi_app(self.args)


def build(args: dict):
    """The Serve app builder (``import_path: api_server.serve_app:build``)."""
    return ManagementAPI.bind(args)

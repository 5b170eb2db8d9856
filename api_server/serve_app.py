"""The management API as a Ray Serve application, so a cluster carries its own endpoint.

A Flask object cannot be pickled into a replica, so Serve gets a BUILDER FUNCTION that makes
the Flask app inside the replica, wrapped by a2wsgi as ASGI (asgiref's WsgiToAsgi breaks on
the lifespan scope and serves requests on one thread). The replica reads the same config
and state dir as the CLI (RAYDEPLOY_CONFIG, RAYDEPLOY_STATE_DIR, RAYDEPLOY_BASE_DIR in its
runtime_env), and tokens and CORS apply exactly as in the standalone server.
"""
from __future__ import annotations

from ray import serve

from cluster.serve import MANAGEMENT_DEPLOYMENT


def build_asgi_app():
    from a2wsgi import WSGIMiddleware

    from api_server import create_app
    return WSGIMiddleware(create_app())


@serve.deployment(name=MANAGEMENT_DEPLOYMENT, num_replicas=1, ray_actor_options={"num_cpus": 0.1})
@serve.ingress(build_asgi_app)
class ManagementAPI:
    pass


app = ManagementAPI.bind()

"""The Serve-hosted management API is built by the same factory from the same environment as
the standalone server: tokens, roles and CORS apply to it alike (checked through its ASGI
wrapper, the object Serve runs in the replica)."""
import asyncio
import json

from api_server.serve_app import asgi_app
from tests.conftest import write_config


def call(app, method: str, path: str, headers: dict | None = None, body: dict | None = None):
    """One request through the ASGI app, as Serve's proxy hands it to the replica."""
    payload = json.dumps(body).encode() if body is not None else b""
    headers = {**(headers or {}), **({"content-type": "application/json"} if body is not None else {})}
    sent = []

    async def receive():
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def replica(tmp_path, principals, listen_host="127.0.0.2", **api):
    config = write_config(tmp_path / "c.yaml", {
        "state_dir": str(tmp_path / "state"), "cluster_name": "replica", "api": api})
    args = {"config": str(config), "state_dir": str(tmp_path / "state"),
            "base_dir": str(tmp_path), "listen_host": listen_host, "principals": principals}
    return asgi_app(args)


def test_the_replica_app_honours_tokens_and_cors(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - {principal: vera, roles: [viewer], token: viewer-token-0123456789}\n")
    tokens.chmod(0o600)
    from checkpoints.access import Principals, digest_salt
    from cluster.config import parse_config
    salt = digest_salt(parse_config({"cluster_name": "replica"}, environ={}))
    digests = Principals.load(None, str(tokens), salt).digests()
    assert "viewer-token" not in str(digests)  # the replica gets digests, never tokens
    assert all(d["digest"].startswith("scrypt$14$8$1$") for d in digests)
    app = replica(tmp_path, digests, cors_origins=["https://ui.example.com"])
    assert call(app, "GET", "/health")[0] == 200
    assert call(app, "GET", "/api/v1/checkpoints")[0] == 401
    status, headers = call(app, "GET", "/api/v1/checkpoints", {
        "Authorization": "Bearer viewer-token-0123456789", "Origin": "https://ui.example.com"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://ui.example.com"
    status, _ = call(app, "POST", "/api/v1/resources/nodes/add",
                     {"Authorization": "Bearer viewer-token-0123456789"}, body={})
    assert status == 403

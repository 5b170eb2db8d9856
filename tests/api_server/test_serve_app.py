"""The Serve-hosted management API is built by the same factory from the same environment as
the standalone server: tokens, roles and CORS apply to it alike (checked through its ASGI
wrapper, the object Serve runs in the replica)."""
import asyncio
import json

from api_server.serve_app import build_asgi_app
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


def test_the_replica_app_honours_tokens_and_cors(tmp_path, monkeypatch):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - {principal: vera, roles: [viewer], token: viewer-token-0123456789}\n")
    config = write_config(tmp_path / "c.yaml", {
        "state_dir": str(tmp_path / "state"), "cluster_name": "replica",
        "api": {"tokens_file": "tokens.yaml", "cors_origins": ["https://ui.example.com"]}})
    monkeypatch.setenv("RAYDEPLOY_CONFIG", str(config))
    monkeypatch.setenv("RAYDEPLOY_BASE_DIR", str(tmp_path))  # tokens.yaml is relative to it
    monkeypatch.delenv("RAYDEPLOY_STATE_DIR", raising=False)
    monkeypatch.delenv("RAYDEPLOY_API_TOKENS", raising=False)
    app = build_asgi_app()
    assert call(app, "GET", "/health")[0] == 200
    assert call(app, "GET", "/api/v1/checkpoints")[0] == 401
    status, headers = call(app, "GET", "/api/v1/checkpoints", {
        "Authorization": "Bearer viewer-token-0123456789", "Origin": "https://ui.example.com"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://ui.example.com"
    status, _ = call(app, "POST", "/api/v1/resources/nodes/add",
                     {"Authorization": "Bearer viewer-token-0123456789"}, body={})
    assert status == 403

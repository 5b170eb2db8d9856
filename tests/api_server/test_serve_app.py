"""The Serve-hosted management API is built by the same factory from the same environment as
the standalone server: tokens, roles and CORS apply to it alike (checked through its ASGI
wrapper, the object Serve runs in the replica)."""
import asyncio
import json

import pytest

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


def streams_then_health(app, store, run_id: str, streams: int) -> tuple[list[int], int]:
    """Open ``streams`` event streams of a run that stays awaiting through the ASGI ``app``
    (as Serve's proxy hands them to the replica), then GET /health: (the streams' status
    codes, sorted; /health's). Every stream ends before it returns."""
    async def scenario():
        gone = asyncio.Event()  # the clients hang up

        async def start(path: str):
            started = asyncio.get_running_loop().create_future()
            calls = 0

            async def receive():
                nonlocal calls
                calls += 1
                if calls == 1:
                    return {"type": "http.request", "body": b"", "more_body": False}
                await gone.wait()
                return {"type": "http.disconnect"}

            async def send(message):
                if message["type"] == "http.response.start" and not started.done():
                    started.set_result(message["status"])
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
                     "client": ("127.0.0.1", 5000), "headers": []}
            return started, asyncio.create_task(app(scope, receive, send))

        opened = [await start(f"/api/v1/deployments/{run_id}/events") for _ in range(streams)]
        try:
            codes = sorted([await asyncio.wait_for(s, 10) for s, _ in opened])
            health, task = await start("/health")
            health_code = await asyncio.wait_for(health, 10)  # starved: TimeoutError
            await task
            return codes, health_code
        finally:
            store.runs.update_run(run_id, status="cancelled")  # every stream ends
            gone.set()
            await asyncio.wait_for(asyncio.gather(*(t for _, t in opened)), 60)
    return asyncio.run(scenario())


def test_event_streams_leave_the_replicas_threads_to_health(tmp_path):
    """The replica serves on REPLICA_THREADS threads and a stream holds one: at most half of
    them stream (as on gunicorn), so viewers cannot starve /health there."""
    from api_server.serve_app import REPLICA_THREADS
    from store import Store
    from tests.api_server.conftest import awaiting
    app = replica(tmp_path, [], sse_per_principal=64)  # only the process's bound applies
    store = Store(tmp_path / "state")
    codes, health = streams_then_health(app, store, awaiting(store), REPLICA_THREADS)
    half = REPLICA_THREADS // 2
    assert codes == [200] * half + [429] * (REPLICA_THREADS - half)
    assert health == 200


@pytest.mark.integration
def test_forwarded_event_streams_leave_the_replicas_threads_to_health(tmp_path):
    """Where a control plane runs the cluster, the replica forwards: a stream holds one of
    its threads all the same, so it bounds them itself (the control plane allows more)."""
    from api_server.serve_app import REPLICA_THREADS
    from store import Store
    from tests.api_server.conftest import awaiting
    from tests.conftest import ApiServer
    config = write_config(tmp_path / "c.yaml", {
        "state_dir": str(tmp_path / "state"), "cluster_name": "forwarded",
        "project_dir": str(tmp_path), "api": {"sse_per_principal": 64}})
    store = Store(tmp_path / "state")
    run_id = awaiting(store)
    server = ApiServer(config)  # the control plane: 16 streams at once
    try:
        app = asgi_app({"forward_to": server.url})
        codes, health = streams_then_health(app, store, run_id, REPLICA_THREADS)
    finally:
        server.stop()
    half = REPLICA_THREADS // 2
    assert codes == [200] * half + [429] * (REPLICA_THREADS - half)
    assert health == 200


def test_the_forwarder_appends_who_called_it_to_x_forwarded_for():
    """The control plane trusts it (api.trusted_proxies) for the caller's address: what it
    appends is the address it saw; what the caller sent stays to its left."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from api_server.forwarding import passed_on
    environ = EnvironBuilder(path="/health", headers={"X-Forwarded-For": "6.6.6.6"}).get_environ()
    environ["REMOTE_ADDR"] = "10.0.0.7"
    assert passed_on(Request(environ))["X-Forwarded-For"] == "6.6.6.6, 10.0.0.7"
    environ = EnvironBuilder(path="/health").get_environ()
    environ["REMOTE_ADDR"] = "10.0.0.7"
    assert passed_on(Request(environ))["X-Forwarded-For"] == "10.0.0.7"

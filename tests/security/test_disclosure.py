"""What a reader learns: no answer carries a secret or a token digest (apps' env_vars and
args, the management API's args, operations' parameters, the config's changes), and a viewer
is not told where the control plane keeps its config and state. Failed authentication is
rate-limited per client address."""
from __future__ import annotations

import json

import pytest

from api_server import create_app
from api_server.settings import Settings
from checkpoints.access import Principals, digest_salt
from checkpoints.operations import AppDeploy
from checkpoints.preview import LAST_SUCCESS_KEY
from cluster.config import parse_config
from cluster.serve import management_app_config
from tests.api_server.conftest import SpecCheckedClient
from tests.security.conftest import OPERATOR, TOKENS, VIEWER

SECRET = "s3cret-value-0123"


def app_with_config_file(tmp_path, **extra):
    """An API whose config came from a file (so it has a path to keep from viewers)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    source = tmp_path / "deploy" / "cluster.prod.yaml"
    config = parse_config({"state_dir": str(tmp_path / "state"), "project_dir": str(project),
                           "jobs_config": str(project / "missing.yaml"), "cluster_name": "leak",
                           "ray": {"version": "0.0.0"}, **extra},
                          source=str(source), environ={})
    app = create_app(Settings(tokens=TOKENS, status_cache_seconds=0), config)
    app.test_client_class = SpecCheckedClient
    return app, source


def test_no_answer_shows_the_management_apis_args_or_an_apps_secrets(tmp_path):
    """GET /applications/management-api showed every principal's name, roles and token
    digest, and the config and state paths; a user app's env_vars showed their values."""
    from tests.fakes import world
    app, _ = app_with_config_file(tmp_path)
    svc = app.extensions["raydeploy"]
    w = world(tmp_path / "cluster")  # a head and Serve, in memory, behind the real interfaces
    digests = Principals.load(TOKENS, None, digest_salt(svc.config)).digests()
    mgmt = management_app_config(svc.config, "127.0.0.2", digests)
    w.ray.app(mgmt["name"], "/", **{k: v for k, v in mgmt.items() if k not in (
        "name", "route_prefix")})
    w.ray.app("hello", "/hello", args={"api_key": SECRET},
              runtime_env={"env_vars": {"APP_TOKEN": SECRET}},
              deployments=[{"name": "D", "ray_actor_options": {
                  "runtime_env": {"env_vars": {"APP_OTHER": SECRET}}}}])
    svc.cluster = w.ctx.cluster
    client = app.test_client()
    for headers in (VIEWER, OPERATOR):
        shown = client.get("/api/v1/applications/management-api", headers=headers)
        assert shown.status_code == 200, shown.get_json()
        text = shown.get_data(as_text=True)
        assert not any(d["digest"] in text for d in digests)
        assert str(svc.config.state_dir) not in text and str(tmp_path) not in text
        assert shown.get_json()["deployed_config"]["args"]["principals"] == "(redacted)"
        hello = client.get("/api/v1/applications/hello", headers=headers)
        assert SECRET not in hello.get_data(as_text=True)
        config = hello.get_json()["deployed_config"]
        assert config["runtime_env"]["env_vars"] == {"APP_TOKEN": "(redacted)"}  # names stay
        assert config["args"] == {"api_key": "(redacted)"}


def test_no_answer_shows_an_operations_secret_parameters(tmp_path):
    app, _ = app_with_config_file(tmp_path)
    store = app.extensions["raydeploy"].store
    op = AppDeploy(entry={"name": "a", "import_path": "examples.apps.hello:build",
                          "route_prefix": "/a", "args": {"password": SECRET},
                          "runtime_env": {"env_vars": {"APP_KEY": SECRET}}},
                   overrides={"ray_actor_options": {"runtime_env": {"env_vars": {
                       "APP_KEY": SECRET}}}})
    run = store.runs.create_run("operation", ["app_deploy"], "olga", "api", op.options())
    client = app.test_client()
    for path in ("/api/v1/deployments", f"/api/v1/deployments/{run.id}"):
        response = client.get(path, headers=VIEWER)
        assert response.status_code == 200 and SECRET not in response.get_data(as_text=True)
    params = client.get(f"/api/v1/deployments/{run.id}", headers=VIEWER).get_json()[
        "options"]["operation"]["params"]
    assert params["entry"]["runtime_env"]["env_vars"] == {"APP_KEY": "(redacted)"}
    assert params["entry"]["import_path"] == "examples.apps.hello:build"  # the rest stays
    assert store.runs.get_run(run.id).options == op.options()  # the record keeps them (to resume)


def test_a_viewer_is_not_told_where_the_config_and_state_are(tmp_path):
    app, source = app_with_config_file(tmp_path)
    svc = app.extensions["raydeploy"]
    svc.store.kv.set(LAST_SUCCESS_KEY, {"run_id": "run-1", "at": 1.0, "config": {
        "state_dir": "/old/state", "serve_apps.0.runtime_env.env_vars.APP_KEY": SECRET}})
    svc.store.deliveries.add_delivery("approval.required", "ops", {
        "event": "approval.required", "approve_command":
            f"python deploy_master.py --config {source} approve teardown"})
    client = app.test_client()
    viewer = {path: client.get(path, headers=VIEWER) for path in (
        "/api/v1/plan", "/api/v1/notifications")}
    for path, response in viewer.items():
        assert response.status_code == 200, (path, response.get_json())
        text = response.get_data(as_text=True)
        for where in (str(source.parent), str(svc.config.state_dir), "/old/state"):
            assert where not in text, (path, where, text)
        assert SECRET not in text
    assert viewer["/api/v1/plan"].get_json()["config"] == "cluster.prod.yaml"
    command = viewer["/api/v1/notifications"].get_json()["deliveries"][0]["payload"][
        "approve_command"]
    assert command == "python deploy_master.py --config cluster.prod.yaml approve teardown"
    # an operator runs deploys from that config: it sees where it is, never the secret
    operator = client.get("/api/v1/plan", headers=OPERATOR).get_json()
    assert operator["config"] == str(source)
    assert {"key": "state_dir", "before": "/old/state", "after": str(svc.config.state_dir)} \
        in [{k: json.loads(v) if k != "key" else v for k, v in c.items()}
            for c in operator["config_changes"]]
    assert SECRET not in json.dumps(operator)


def test_failed_authentication_is_rate_limited_per_client_address(tmp_path, caplog):
    from api_server.auth import FailedAuthLimiter
    from tests.fakes import FakeClock
    from tests.security.conftest import bearer
    app, _ = app_with_config_file(tmp_path)
    clock = FakeClock()
    app.extensions["raydeploy.auth_failures"] = FailedAuthLimiter(clock=clock)  # the defaults
    client = app.test_client()
    attacker, other = {"REMOTE_ADDR": "127.0.0.66"}, {"REMOTE_ADDR": "127.0.0.7"}

    def get(headers, address):
        return client.get("/api/v1/checkpoints", headers=headers, environ_base=address)
    codes = [get(bearer(f"guess-{i:020d}"), attacker).status_code for i in range(12)]
    assert codes == [401] * 10 + [429] * 2
    limited = get(VIEWER, attacker)  # a right token is not even checked while limited
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert get(VIEWER, other).status_code == 200  # another address is not held up
    assert get({}, attacker).status_code == 401  # no token: not a guess, not limited
    clock.advance(5)  # one more try every 5 s
    assert get(VIEWER, attacker).status_code == 200
    assert get(bearer("guess-again-0123456789"), attacker).status_code == 401
    assert get(bearer("guess-again-0123456789"), attacker).status_code == 429
    assert "127.0.0.66" in caplog.text and "guess-" not in caplog.text  # logged, never the token


def test_behind_a_trusted_proxy_the_client_address_is_the_one_it_forwarded(tmp_path):
    """A reverse proxy (or the cluster's management API, forwarding to a control plane)
    makes every client one address: with api.trusted_proxies, the limiter and the audit
    trail take the address that proxy appended to X-Forwarded-For, and nobody else's."""
    from tests.security.conftest import bearer
    app, _ = app_with_config_file(tmp_path, api={"trusted_proxies": ["127.0.0.5"]})
    client = app.test_client()
    proxy, elsewhere = {"REMOTE_ADDR": "127.0.0.5"}, {"REMOTE_ADDR": "127.0.0.66"}

    def get(headers, address, forwarded=None):
        extra = {"X-Forwarded-For": forwarded} if forwarded else {}
        return client.get("/api/v1/checkpoints", headers={**headers, **extra},
                          environ_base=address).status_code
    for i in range(10):  # one client behind the proxy (10.0.0.9) guesses, claiming others
        assert get(bearer(f"guess-{i:020d}"), proxy, f"203.0.113.{i}, 10.0.0.9") == 401
    assert get(VIEWER, proxy, "10.0.0.1, 10.0.0.2") == 200  # another client behind it
    assert get(VIEWER, proxy, "10.0.0.99, 10.0.0.9") == 429  # the guesser, whatever it claims
    # a caller that is no trusted proxy cannot pick its address with the header
    for i in range(10):
        get(bearer(f"guess-{i:020d}"), elsewhere, f"10.1.0.{i}")
    assert get(VIEWER, elsewhere, "10.1.0.200") == 429
    # the audit trail says who the proxy forwarded
    store = app.extensions["raydeploy"].store
    client.post("/api/v1/approvals/worker_launch", json={}, environ_base=proxy,
                headers={**VIEWER, "X-Forwarded-For": "10.0.0.3"})
    assert [e.client_address for e in store.audit_log.audit_events()] == ["10.0.0.3"]


def test_a_trusted_proxy_must_be_an_address_or_a_network():
    from cluster.config import ConfigError
    with pytest.raises(ConfigError) as info:
        parse_config({"api": {"trusted_proxies": ["10.0.0.0/8", "::1", "proxy.example.com"]}},
                     environ={})
    assert list(info.value.errors) == ["api.trusted_proxies.2"]

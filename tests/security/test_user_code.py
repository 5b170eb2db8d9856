"""Side doors 1 and 2: the API host never imports or runs user code, and what a deploy may
carry (import path, runtime_env, actor options) is checked before anything reaches Ray."""
from __future__ import annotations

import pytest

from tests.security.conftest import make_app


@pytest.fixture
def app_client(tmp_path):
    project = tmp_path / "project"
    (project / "evilpkg").mkdir(parents=True)
    marker = tmp_path / "imported"
    # importing this module would leave a marker: the API host must never import it
    (project / "evilpkg" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "from ray import serve\n"
        "@serve.deployment\nclass App:\n    async def __call__(self, r): return 'x'\n"
        "app = App.bind()\n")
    app = make_app(tmp_path, serve={"allowed_import_prefixes": ["evilpkg"]})
    return app.test_client(), marker, tmp_path


def test_an_import_path_outside_the_allowed_prefixes_is_refused_and_never_run(app_client):
    client, _, tmp_path = app_client
    proof = tmp_path / "pwned"
    # subprocess.run(args) with args as a dict ran `touch <proof>` on the API host before
    response = client.post("/api/v1/applications", json={
        "name": "x", "import_path": "subprocess:run", "route_prefix": "/x", "num_replicas": 1,
        "args": {"touch": 1, str(proof): 1}})
    assert response.status_code == 422, response.get_json()
    assert "import_path" in response.get_json()["errors"]["json"]
    assert not proof.exists()


def test_deploying_with_per_deployment_options_never_imports_the_app_here(app_client):
    client, marker, _ = app_client
    response = client.post("/api/v1/applications", json={
        "name": "evil", "import_path": "evilpkg:app", "route_prefix": "/evil",
        "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.5}})
    assert response.status_code == 409  # allowed, but there is no cluster to deploy to
    assert not marker.exists(), "the API host imported user code"


@pytest.mark.parametrize("extra,field", [
    ({"runtime_env": {"pip": ["requests"]}}, "runtime_env.pip"),
    ({"runtime_env": {"py_executable": "/bin/sh"}}, "runtime_env.py_executable"),
    ({"runtime_env": {"working_dir": "/etc"}}, "runtime_env.working_dir"),
    ({"runtime_env": {"working_dir": "s3://bucket/code.zip"}}, "runtime_env.working_dir"),
    ({"runtime_env": {"env_vars": {"LD_PRELOAD": "/tmp/evil.so"}}},
     "runtime_env.env_vars.LD_PRELOAD"),
    ({"runtime_env": {"env_vars": {"PYTHONSTARTUP": "/tmp/x.py"}}},
     "runtime_env.env_vars.PYTHONSTARTUP"),
    ({"ray_actor_options": {"num_cpus": -1}}, "ray_actor_options"),
    ({"ray_actor_options": {"runtime_env": {"pip": ["x"]}}}, "ray_actor_options"),
    ({"ray_actor_options": {"num_gpus": 1e9}}, "ray_actor_options"),
])
def test_runtime_env_and_actor_options_are_checked_with_the_field_named(app_client, extra, field):
    client, _, _ = app_client
    response = client.post("/api/v1/applications", json={
        "name": "a", "import_path": "evilpkg:app", "route_prefix": "/a", **extra})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    assert any(key == field or key.startswith(field) for key in _paths(errors)), errors


@pytest.mark.parametrize("name", ["HOME", "HTTPS_PROXY", "http_proxy", "NO_PROXY",
                                  "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GCONV_PATH",
                                  "RAY_DEBUG_POST_MORTEM", "TMPDIR", "LD_PRELOAD"])
def test_env_vars_are_an_allow_list_not_a_blocklist(app_client, name):
    """Proxies, CA bundles, the home dir, Ray's debugger...: a variable passes only when
    serve.allowed_env_vars allows it (default APP_*)."""
    client, _, _ = app_client
    response = client.post("/api/v1/applications", json={
        "name": "a", "import_path": "evilpkg:app", "route_prefix": "/a",
        "runtime_env": {"env_vars": {name: "x"}}})
    assert response.status_code == 422, response.get_json()
    field = f"runtime_env.env_vars.{name}"
    assert field in response.get_json()["errors"]["json"], response.get_json()
    message = response.get_json()["errors"]["json"][field][0]
    assert "serve.allowed_env_vars" in message or "loads or runs" in message


def test_allowed_env_vars_come_from_the_config_and_never_let_the_loader_in(tmp_path):
    (tmp_path / "project").mkdir()
    app = make_app(tmp_path, serve={"allowed_import_prefixes": ["evilpkg"],
                                    "allowed_env_vars": ["MODEL_*", "LOG_LEVEL"]})
    client = app.test_client()

    def deploy(env: dict):
        return client.post("/api/v1/applications", json={
            "name": "a", "import_path": "evilpkg:app", "route_prefix": "/a",
            "runtime_env": {"env_vars": env}})
    # allowed: refused only because there is no cluster to deploy to
    assert deploy({"MODEL_NAME": "m", "LOG_LEVEL": "debug"}).status_code == 409
    assert deploy({"APP_X": "1"}).status_code == 422  # the default is replaced, not added to
    (tmp_path / "all").mkdir()
    everything = make_app(tmp_path / "all", serve={"allowed_import_prefixes": ["evilpkg"],
                                                   "allowed_env_vars": ["*"]}).test_client()
    refused = everything.post("/api/v1/applications", json={
        "name": "a", "import_path": "evilpkg:app", "route_prefix": "/a",
        "runtime_env": {"env_vars": {"LD_PRELOAD": "/tmp/evil.so"}}})
    assert refused.status_code == 422
    assert "runtime_env.env_vars.LD_PRELOAD" in refused.get_json()["errors"]["json"]


def test_an_allowed_env_vars_pattern_that_is_no_name_pattern_is_a_config_error():
    from cluster.config import ConfigError, parse_config
    with pytest.raises(ConfigError) as info:
        parse_config({"serve": {"allowed_env_vars": ["APP_*", "A B", "$(x)"]}}, environ={})
    assert set(info.value.errors) == {"serve.allowed_env_vars.1", "serve.allowed_env_vars.2"}


def _paths(errors, prefix=""):
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)

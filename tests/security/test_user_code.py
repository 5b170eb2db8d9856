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


def _paths(errors, prefix=""):
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)

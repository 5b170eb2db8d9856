"""Trust boundary 8: a plan shows (and its fingerprint covers) what changes: an app's args,
runtime_env, replicas and resources, a job's arguments and resources, before -> after; the
values of environment variables and secrets (the management API's token digests) are never
shown, yet a change of them changes the fingerprint."""
from __future__ import annotations

import json

from checkpoints.plan import Plan
from checkpoints.steps.job_creation import desired_jobs
from cli.gate import show_plan
from tests.fakes import CONFIGURED, job_world, succeed_all, world

HELLO = {**CONFIGURED, "args": {"greeting": "hello"},
         "runtime_env": {"env_vars": {"MODE": "fast", "API_TOKEN": "new-s3cret-value"}},
         "deployments": [{"name": "Hello", "num_replicas": 2,
                          "ray_actor_options": {"num_cpus": 0.5}}]}
RUNNING = {"args": {"greeting": "hi"},
           "runtime_env": {"env_vars": {"MODE": "slow", "API_TOKEN": "old-s3cret-value"}},
           "deployments": [{"name": "Hello", "num_replicas": 1,
                            "ray_actor_options": {"num_cpus": 1}}]}


def serve_plan(tmp_path, app=HELLO, live=RUNNING):
    w = world(tmp_path, apps=(app,))
    w.ray.app("hello", "/hello", "examples.apps.hello:app", **live)
    return w.plan("serve_deploy")


def test_an_app_update_shows_args_replicas_and_resources_before_and_after(tmp_path):
    plan = serve_plan(tmp_path)
    (action,) = plan.actions
    assert action.details["changes"] == {
        "args.greeting": '"hi" -> "hello"',
        "deployments.Hello.num_replicas": "1 -> 2",
        "deployments.Hello.ray_actor_options.num_cpus": "1 -> 0.5",
        "runtime_env.env_vars.API_TOKEN": "changed",  # environment values: never shown
        "runtime_env.env_vars.MODE": "changed"}
    shown = json.dumps(plan.to_dict()) + action.describe()
    for secret in ("s3cret", "fast", "slow"):
        assert secret not in shown


def test_a_changed_secret_changes_the_fingerprint_but_not_what_is_shown(tmp_path):
    first = serve_plan(tmp_path / "a")
    other = {**HELLO, "runtime_env": {"env_vars": {"MODE": "fast", "API_TOKEN": "third-one"}}}
    second = serve_plan(tmp_path / "a", app=other)
    assert first.to_dict()["actions"] == second.to_dict()["actions"]
    assert first.fingerprint != second.fingerprint
    assert Plan.from_dict(first.to_dict()).fingerprint == first.fingerprint  # as recorded


def test_a_new_app_shows_its_settings_with_environment_values_redacted(tmp_path):
    w = world(tmp_path, apps=(HELLO,))
    (action,) = w.plan("serve_deploy").actions
    assert action.details["settings"] == {
        "args.greeting": "hello", "deployments.Hello.num_replicas": 2,
        "deployments.Hello.ray_actor_options.num_cpus": 0.5,
        "runtime_env.env_vars.API_TOKEN": "(redacted)", "runtime_env.env_vars.MODE": "(redacted)"}


def test_the_management_api_plan_never_shows_token_digests(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - {principal: vera, roles: [viewer], token: "
                      "vera-secret-token-0123456789}\n")
    tokens.chmod(0o600)
    w = world(tmp_path, mgmt=True, api={"tokens_file": str(tokens)})
    w.ray.app("hello", "/hello", "examples.apps.hello:app")
    plan = w.plan("serve_deploy")
    (create,) = plan.actions
    assert create.details["settings"]["args.principals"] == "(redacted)"
    assert "scrypt$" not in json.dumps(plan.to_dict()) and "vera-secret" not in str(plan)
    live = {k: v for k, v in w.ctx.cluster.serve.desired_apps([])[-1][0].items()
            if k not in ("name", "import_path", "route_prefix")}  # deployed with no tokens
    w.ray.app("management-api", "/", "api_server.serve_app:build", **live)
    (update,) = w.plan("serve_deploy").actions
    assert update.details["changes"]["args.principals"] == "changed"
    assert "scrypt$" not in json.dumps(update.to_dict())


def test_a_job_update_shows_its_arguments_and_resources_with_environment_hidden(tmp_path):
    w = job_world(tmp_path)
    for spec in desired_jobs(w.ctx):
        w.platform.create_job(spec)
    succeed_all(w)
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n  - {name: a, script: jobs/git_sync.py}\n"
        "  - {name: b, script: jobs/git_sync.py, parent_job_key: a, arguments: --full,"
        " cpu: 2, environment: {DB_PASSWORD: hunter2-secret}}\n")
    update = w.plan("job_creation").actions[0]
    assert update.details["changes"] == {"arguments": '"" -> "--full"', "cpu": "1.0 -> 2.0",
                                         "environment.DB_PASSWORD": "set"}
    assert "hunter2" not in json.dumps(update.to_dict())


def test_the_cli_shows_each_change_on_a_line_of_its_own(tmp_path, capsys):
    from checkpoints import BY_NAME
    plan = serve_plan(tmp_path)
    show_plan("serve_deploy", plan, BY_NAME["serve_deploy"].gate(plan, world(tmp_path).ctx.config))
    out = capsys.readouterr().out
    assert '          args.greeting: "hi" -> "hello"' in out
    assert "          runtime_env.env_vars.API_TOKEN: changed" in out
    assert "s3cret" not in out

"""Server settings read from the environment once (api_server/settings.py): each variable,
its default, and the port a platform publishes winning over the one asked for. The listener
that follows from it: tests/security/test_listeners.py."""
from __future__ import annotations

from api_server.settings import Settings

CML_APP = {"CDSW_APP_PORT": "8090", "CDSW_DOMAIN": "ml.example.com"}


def test_an_empty_environment_gives_the_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.port, settings.host, settings.tokens, settings.ray_address) == (
        None, None, None, None)
    assert (settings.status_cache_seconds, settings.plan_cache_seconds,
            settings.sse_process_limit, settings.control_plane) == (1.0, 10.0, 16, False)


def test_each_variable_sets_its_setting():
    settings = Settings.from_env({
        "RAYDEPLOY_CONFIG": "/etc/rd/cluster.yaml", "RAYDEPLOY_STATE_DIR": "/var/rd",
        "RAYDEPLOY_BASE_DIR": "/srv", "RAYDEPLOY_API_HOST": "0.0.0.0",
        "RAYDEPLOY_API_PORT": "9000", "RAYDEPLOY_API_TOKENS": "ci:operator:tok",
        "RAYDEPLOY_STATUS_CACHE_SECONDS": "2.5", "RAYDEPLOY_PLAN_CACHE_SECONDS": "0",
        "RAYDEPLOY_SSE_LIMIT": "4", "RAYDEPLOY_CONTROL_PLANE": "1",
        "RAYDEPLOY_PUBLIC_URL": "http://10.0.0.5:9000"})
    assert (settings.config_path, settings.state_dir, settings.base_dir) == (
        "/etc/rd/cluster.yaml", "/var/rd", "/srv")
    assert (settings.host, settings.port, settings.tokens) == ("0.0.0.0", 9000, "ci:operator:tok")
    assert (settings.status_cache_seconds, settings.plan_cache_seconds,
            settings.sse_process_limit) == (2.5, 0.0, 4)
    assert settings.control_plane and settings.public_url == "http://10.0.0.5:9000"
    assert settings.published_by is None


def test_a_port_that_is_not_a_number_is_no_port():
    assert Settings.from_env({"RAYDEPLOY_API_PORT": "http"}).port is None
    assert Settings.from_env({"RAYDEPLOY_API_PORT": "-1"}).port is None


def test_only_1_makes_a_control_plane():
    for value in ("true", "yes", "0", ""):
        assert not Settings.from_env({"RAYDEPLOY_CONTROL_PLANE": value}).control_plane


def test_empty_addresses_and_tokens_are_none():
    settings = Settings.from_env({"RAY_ADDRESS": "", "RAY_AUTH_TOKEN": "",
                                  "RAYDEPLOY_PUBLIC_URL": ""})
    assert (settings.ray_address, settings.ray_auth_token, settings.public_url) == (None, None, None)


def test_the_port_a_platform_publishes_wins_and_is_said_to():
    settings = Settings.from_env({**CML_APP, "RAYDEPLOY_API_PORT": "9000"})
    assert (settings.port, settings.published_by) == (8090, "CDSW_APP_PORT")


def test_outside_the_platforms_workload_its_port_variable_publishes_nothing():
    settings = Settings.from_env({"CDSW_APP_PORT": "8090", "RAYDEPLOY_API_PORT": "9000"})
    assert (settings.port, settings.published_by) == (9000, None)


def test_the_environment_is_kept_as_it_was_read_and_out_of_the_repr():
    environ = {"RAYDEPLOY_API_TOKEN_DIGESTS": "[]", "OTHER": "some-value"}
    settings = Settings.from_env(environ)
    environ["OTHER"] = "changed later"
    assert settings.environ["OTHER"] == "some-value"
    assert "some-value" not in repr(settings) and "TOKEN_DIGESTS" not in repr(settings)



def test_without_an_environment_given_the_processes_own_is_read(monkeypatch):
    monkeypatch.setenv("RAYDEPLOY_API_PORT", "9123")
    monkeypatch.setenv("RAYDEPLOY_SSE_LIMIT", "2")
    settings = Settings.from_env()
    assert (settings.port, settings.sse_process_limit) == (9123, 2)


def test_the_api_tokens_are_never_in_the_settings_repr():
    from api_server.settings import Settings
    assert "tok-0123456789abcdef" not in repr(Settings(tokens="ci:operator:tok-0123456789abcdef"))

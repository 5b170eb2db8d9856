"""The bootstrap's wait for the control app: it says what happened, with the app's log."""
from types import SimpleNamespace

import pytest

from cluster.config import parse_config
from cluster.platforms.cml.control import ControlAppFailed, control_config, wait_for
from cluster.platforms.records import FAILED, RUNNING, STARTING, App, AppSpec
from tests.fakes import FakeClock

APP = App(id="a1", name="ray-control", status=STARTING, spec=AppSpec("ray-control", "s.py", 1, 1))
CONFIG = SimpleNamespace(cluster_name="ray")


def platform(statuses, log="gunicorn: refusing to serve on 127.0.0.1 without API tokens\n"):
    seen = iter(statuses)
    return SimpleNamespace(cml=SimpleNamespace(control_timeout_seconds=60),
                           get_app=lambda app_id: SimpleNamespace(status=next(seen)),
                           read_file_at=lambda path: log)


def test_a_control_app_that_never_answers_times_out_with_its_log():
    said, clock = [], FakeClock()
    with pytest.raises(ControlAppFailed) as failed:
        wait_for(platform([STARTING] * 1000), APP, "http://ray-control.ml.lab", CONFIG,
                 said.append, clock=clock, answering=lambda url, name: False)
    message = str(failed.value)
    assert "did not answer at http://ray-control.ml.lab within 60s (it is starting)" in message
    assert "refusing to serve" in message  # the end of its log
    assert 5 <= len(said) <= 7  # a progress line every 10 s, not every try


def test_a_control_app_that_ended_is_said_at_once():
    clock = FakeClock()
    with pytest.raises(ControlAppFailed, match="is failed; the end of its log"):
        wait_for(platform([STARTING, FAILED]), APP, "http://u", CONFIG, lambda _: None,
                 clock=clock, answering=lambda url, name: False)
    assert clock.slept < 2


def test_it_is_ready_once_running_and_answering_for_its_cluster():
    said = []
    wait_for(platform([STARTING, RUNNING, RUNNING]), APP, "http://u", CONFIG, said.append,
             clock=FakeClock(), answering=lambda url, name: name == "ray")
    assert said[-1].startswith("control plane: http://u")


def test_the_control_config_holds_no_secret_and_no_desired_state():
    config = parse_config({"cluster_name": "ray", "platform": "cml",
                           "cml": {"host": "https://ml.example", "api_key": "k" * 20},
                           "workers": {"count": 3}, "api": {"tokens_file": "/etc/t.yaml"}},
                          environ={})
    doc = control_config(config, "p-1")
    assert "api_key" not in doc["cml"] and "host" not in doc["cml"]
    assert doc["cml"]["project_id"] == "p-1" and "workers" not in doc
    assert "tokens_file" not in doc["api"] and "k" * 20 not in str(doc)


def test_the_control_app_starts_only_with_the_config_the_bootstrap_wrote():
    import hashlib
    import json

    from cluster.platforms.cml.control_app import config_intact
    text = "cluster_name: c\napprovals: {policy: {worker_launch: {min_approvals: 2}}}\n"
    digests = json.dumps([{"principal": "alice", "digest": "scrypt$..."}], sort_keys=True)
    env = {"RAYDEPLOY_API_TOKEN_DIGESTS": digests,
           "RAYDEPLOY_CONTROL_DIGEST": hashlib.sha256((text + digests).encode()).hexdigest()[:16]}
    assert config_intact(env, text)
    assert not config_intact(env, text.replace("2", "0"))  # rewritten in the project
    assert not config_intact({**env, "RAYDEPLOY_API_TOKEN_DIGESTS": "[]"}, text)
    assert not config_intact({}, text)  # an app the bootstrap did not make

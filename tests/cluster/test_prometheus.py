"""The cluster's Prometheus (cluster/prometheus.py): the config it is given, its command line,
and the client's reading of Prometheus's answers, through a scripted transport (no server;
a real Prometheus: tests/integration)."""
from __future__ import annotations

import json
import os

import pytest
import requests
import yaml

from cluster.prometheus import (
    PrometheusClient,
    PrometheusError,
    _duration,
    prometheus_binary,
    prometheus_command,
    render_config,
)


def rendered(*args, **kwargs) -> dict:
    text = render_config(*args, **kwargs)
    assert text.startswith("# Written by raydeploy")
    return yaml.safe_load(text)


def jobs(config: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


# -- durations -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds,text", [(10, "10s"), (0.5, "500ms"), (1.25, "1250ms"),
                                          (60.0, "60s"), (0.001, "1ms")])
def test_durations_are_whole_units(seconds, text):
    assert _duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, -1, 0.0001])
def test_a_duration_must_be_positive(seconds):
    with pytest.raises(ValueError):
        _duration(seconds)


# -- the config ------------------------------------------------------------------------------------
def test_the_ray_job_reads_rays_service_discovery_file(tmp_path):
    sd = tmp_path / "prom_metrics_service_discovery.json"
    config = rendered(sd, [], scrape_interval=15, cluster_label="rd")
    assert config["global"] == {"scrape_interval": "15s", "scrape_timeout": "10s",
                                "evaluation_interval": "15s"}
    ray = jobs(config)["ray"]
    assert ray["file_sd_configs"] == [{"files": [str(sd)], "refresh_interval": "5s"}]
    assert ray["relabel_configs"] == [{"target_label": "ray_io_cluster", "replacement": "rd"}]
    assert "static_configs" not in ray


def test_the_scrape_timeout_is_never_longer_than_the_interval():
    assert rendered(None, [], scrape_interval=2)["global"]["scrape_timeout"] == "2s"
    assert rendered(None, [], scrape_interval=2, scrape_timeout=1.5)["global"][
        "scrape_timeout"] == "1500ms"


def test_static_ray_targets_stand_in_for_the_file_and_without_either_there_is_no_ray_job():
    config = rendered(None, [], ray_targets=["127.0.0.2:20001", "127.0.0.3:20001"])
    assert jobs(config)["ray"]["static_configs"] == [{"targets": ["127.0.0.2:20001",
                                                                  "127.0.0.3:20001"]}]
    assert "file_sd_configs" not in jobs(config)["ray"]
    assert rendered(None, [])["scrape_configs"] == []


def test_each_extra_target_is_a_job_of_its_own_with_what_it_says():
    config = rendered(None, [
        {"job": "api", "targets": ["127.0.0.2:8000"], "metrics_path": "/mgmt/metrics",
         "labels": {"cluster": "rd"}, "scrape_interval": 30},
        {"job": "other", "targets": ["h:1"], "scheme": "https"}])
    api, other = jobs(config)["api"], jobs(config)["other"]
    assert (api["metrics_path"], api["scheme"]) == ("/mgmt/metrics", "http")
    assert api["static_configs"] == [{"targets": ["127.0.0.2:8000"], "labels": {"cluster": "rd"}}]
    assert (api["scrape_interval"], api["scrape_timeout"]) == ("30s", "10s")
    assert (other["metrics_path"], other["scheme"]) == ("/metrics", "https")
    assert "scrape_interval" not in other and "authorization" not in other


def test_a_token_is_named_by_its_file_never_written_into_the_config(tmp_path):
    token_file = tmp_path / "viewer-token"
    text = render_config(None, [{"job": "api", "targets": ["h:1"],
                                 "bearer_token_file": token_file}])
    assert jobs(yaml.safe_load(text))["api"]["authorization"] == {
        "type": "Bearer", "credentials_file": str(token_file)}
    with pytest.raises(ValueError, match="bearer_token_file"):
        render_config(None, [{"job": "api", "targets": ["h:1"], "bearer_token": "s3cret"}])


def test_job_names_are_unique_the_ray_jobs_included(tmp_path):
    with pytest.raises(ValueError, match="duplicate job name 'ray'"):
        render_config(tmp_path / "sd.json", [{"job": "ray", "targets": ["h:1"]}])
    with pytest.raises(ValueError, match="duplicate job name 'a'"):
        render_config(None, [{"job": "a", "targets": ["h:1"]}, {"job": "a", "targets": ["h:2"]}])
    # without a ray job, an extra job may take the name
    assert "ray" in jobs(rendered(None, [{"job": "ray", "targets": ["h:1"]}]))


# -- the command line and the binary ---------------------------------------------------------------
def test_the_command_listens_where_it_is_told_and_cannot_be_quit_over_http():
    argv = prometheus_command("/usr/bin/prometheus", "/s/prometheus.yml", "/s/data",
                              "127.0.0.2:9090", retention="12h")
    assert argv == ["/usr/bin/prometheus", "--config.file=/s/prometheus.yml",
                    "--storage.tsdb.path=/s/data", "--web.listen-address=127.0.0.2:9090",
                    "--storage.tsdb.retention.time=12h"]
    assert not any("lifecycle" in a for a in argv)


def test_the_binary_on_path_is_found_first(tmp_path, monkeypatch):
    binary = tmp_path / "prometheus"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert prometheus_binary() == str(binary)


# -- the client ------------------------------------------------------------------------------------
class ScriptedSession:
    """A ``requests.Session`` stand-in: answers each GET with the next scripted answer
    (status, JSON body or text), or raises it; notes what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked: list[tuple[str, dict | None]] = []

    def get(self, url, params=None, timeout=None):
        self.asked.append((url, params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        if isinstance(body, str):
            response.headers["Content-Type"] = "text/plain"
            response._content = body.encode()
        else:
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(body).encode()
        return response


def client(*answers) -> PrometheusClient:
    c = PrometheusClient("http://127.0.0.2:9090/", timeout=1)
    c.session = ScriptedSession(*answers)
    return c


def success(data) -> tuple[int, dict]:
    return 200, {"status": "success", "data": data}


def test_targets_are_read_with_their_job_instance_and_health():
    target = {"labels": {"job": "ray", "instance": "127.0.0.3:20001"}, "health": "down",
              "lastError": "connection refused", "scrapeUrl": "http://127.0.0.3:20001/metrics",
              "lastScrape": "2026-01-01T00:00:00Z"}
    prometheus = client(success({"activeTargets": [target], "droppedTargets": []}))
    [read] = prometheus.targets()
    assert (read["job"], read["instance"], read["health"], read["lastError"]) == (
        "ray", "127.0.0.3:20001", "down", "connection refused")
    assert prometheus.session.asked == [("http://127.0.0.2:9090/api/v1/targets",
                                         {"state": "active"})]


def test_an_instant_query_gives_labels_and_values():
    vector = client(success({"resultType": "vector", "result": [
        {"metric": {"ip": "127.0.0.2"}, "value": [1700000000.1, "12.5"]}]}))
    assert vector.query("ray_node_cpu_utilization") == [({"ip": "127.0.0.2"}, 12.5)]
    scalar = client(success({"resultType": "scalar", "result": [1700000000.1, "3"]}))
    assert scalar.query("1 + 2") == [({}, 3.0)]
    matrix = client(success({"resultType": "matrix", "result": []}))
    with pytest.raises(PrometheusError, match="unexpected result type matrix"):
        matrix.query("up[5m]")


def test_a_refused_query_says_prometheus_s_error():
    prometheus = client((400, {"status": "error", "errorType": "bad_data",
                               "error": "parse error at char 3"}))
    with pytest.raises(PrometheusError) as info:
        prometheus.query("up{")
    assert "HTTP 400" in str(info.value) and "bad_data" in str(info.value)
    assert "parse error at char 3" in str(info.value)


def test_an_answer_that_is_not_prometheus_json_is_an_error_with_its_text():
    with pytest.raises(PrometheusError, match="HTTP 502 .*bad gateway"):
        client((502, "bad gateway")).targets()
    with pytest.raises(PrometheusError):  # JSON, 200, but no success
        client((200, {"status": "error"})).targets()


def test_ready_is_a_200_on_its_ready_page_and_false_when_it_does_not_answer():
    assert client((200, "Prometheus Server is Ready.")).ready()
    assert not client((503, "Service Unavailable")).ready()
    assert not client(requests.ConnectionError("refused")).ready()

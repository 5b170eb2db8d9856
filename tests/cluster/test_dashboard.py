"""The Ray dashboard client (cluster/dashboard.py) through a scripted transport, as
tests/cluster/platforms/cml/test_client.py does for CML: what it asks, how it reads Ray's
answers, what its errors say, and the retries of a Serve PUT on a fake clock."""
from __future__ import annotations

import json

import pytest
import requests

from cluster.dashboard import DashboardClient, DashboardError, _reason
from tests.fakes import FakeClock

TRACEBACK = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "ValueError: no such deployment\n")


class ScriptedTransport:
    """A ``requests.Session`` stand-in: answers with the given (status, body) pairs in turn
    (an exception is raised instead), notes every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.headers: dict = {}
        self.sent: list[tuple[str, str, dict]] = []

    def request(self, method, url, **kwargs) -> requests.Response:
        self.sent.append((method, url, kwargs))
        answer = self.answers.pop(0) if self.answers else (200, {})
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
        return response


def dashboard(*answers, token=None) -> DashboardClient:
    client = DashboardClient("http://127.0.0.2:8265/", token=token, timeout=3)
    transport = ScriptedTransport(*answers)
    transport.headers.update(client.session.headers)
    client.session = transport
    client.clock = FakeClock(start=0.0)
    return client


def test_the_token_is_sent_as_a_bearer_and_no_proxy_is_used():
    client = DashboardClient("http://127.0.0.2:8265", token="tok-123")
    assert client.session.headers["Authorization"] == "Bearer tok-123"
    assert client.session.trust_env is False
    assert "Authorization" not in DashboardClient("http://127.0.0.2:8265").session.headers


# -- reading Ray's answers -------------------------------------------------------------------------
def test_nodes_and_actors_are_the_rows_of_the_state_api():
    rows = {"data": {"result": {"result": [{"node_id": "n1", "state": "ALIVE"}]}}}
    client = dashboard((200, rows), (200, rows))
    assert client.nodes() == [{"node_id": "n1", "state": "ALIVE"}]
    assert client.actors() == [{"node_id": "n1", "state": "ALIVE"}]
    (m1, nodes_url, nodes_args), (m2, actors_url, actors_args) = client.session.sent
    assert (m1, nodes_url) == ("GET", "http://127.0.0.2:8265/api/v0/nodes")
    assert nodes_args["params"]["detail"] == "true" and nodes_args["timeout"] == 3
    assert actors_url.endswith("/api/v0/actors")
    assert actors_args["params"]["filter_values"] == "ALIVE"  # live actors only


def test_usage_per_node_is_the_used_half_of_the_load_report():
    report = {"data": {"clusterStatus": {"loadMetricsReport": {"usageByNode": {
        "n1": {"CPU": [1.5, 4.0], "memory": [1e9, 8e9]}}}}}}
    assert dashboard((200, report)).usage_by_node() == {"n1": {"CPU": 1.5, "memory": 1e9}}
    assert dashboard((200, {"data": {"clusterStatus": None}})).usage_by_node() == {}
    assert dashboard((200, {})).usage_by_node() == {}


def test_a_jobs_logs_are_its_text_or_nothing():
    assert dashboard((200, {"logs": "line 1\n"})).job_logs("raysubmit_1") == "line 1\n"
    assert dashboard((200, {"logs": None})).job_logs("raysubmit_1") == ""


def test_submitting_a_job_posts_the_entrypoint_with_its_id_and_metadata():
    client = dashboard((200, {"submission_id": "check-1"}))
    client.submit_job("python -c 'print(1)'", "check-1", {"by": "raydeploy"})
    [(method, url, kwargs)] = client.session.sent
    assert (method, url) == ("POST", "http://127.0.0.2:8265/api/jobs/")
    assert kwargs["json"] == {"entrypoint": "python -c 'print(1)'", "submission_id": "check-1",
                              "metadata": {"by": "raydeploy"}}


# -- health ----------------------------------------------------------------------------------------
def test_healthy_is_a_200_from_the_gcs_health_check():
    assert dashboard((200, "success")).healthy()
    assert not dashboard((503, "GCS down")).healthy()
    assert not dashboard(requests.ConnectionError("refused")).healthy()


def test_whether_the_dashboard_reaches_prometheus_is_its_own_answer():
    assert dashboard((200, {"result": True, "msg": "prometheus running"})).prometheus_health() \
        == (True, "prometheus running")
    seen, detail = dashboard((500, "no prometheus")).prometheus_health()
    assert not seen and "HTTP 500" in detail
    assert dashboard((200, "<html>")).prometheus_health()[0] is False  # not JSON


# -- errors ----------------------------------------------------------------------------------------
def test_a_traceback_is_said_by_its_last_line():
    assert _reason(TRACEBACK) == "ValueError: no such deployment"
    assert _reason("  plain refusal  \n") == "plain refusal"
    assert len(_reason("x" * 1000)) == 300


def test_an_error_answer_names_the_call_its_status_and_the_reason():
    with pytest.raises(DashboardError) as info:
        dashboard((500, TRACEBACK)).serve_applications()
    assert str(info.value) == ("GET /api/serve/applications/: HTTP 500 "
                               "ValueError: no such deployment")
    assert info.value.status == 500


def test_a_dashboard_that_does_not_answer_is_said_without_a_status():
    with pytest.raises(DashboardError) as info:
        dashboard(requests.ConnectTimeout("slow")).version()
    assert str(info.value) == "GET /api/version: dashboard unreachable (ConnectTimeout)"
    assert info.value.status is None


def test_a_refusal_says_why_no_token_was_sent_when_there_is_a_reason():
    client = dashboard((401, "Unauthorized"), (404, "not found"))
    client.auth_note = "RAY_ADDRESS is another cluster: give its token as RAY_AUTH_TOKEN"
    with pytest.raises(DashboardError) as refused:
        client.jobs()
    assert str(refused.value).endswith("(RAY_ADDRESS is another cluster: give its token as "
                                       "RAY_AUTH_TOKEN)")
    with pytest.raises(DashboardError) as missing:
        client.job("raysubmit_1")
    assert "RAY_AUTH_TOKEN" not in str(missing.value)  # only a refusal is about the token


# -- the Serve PUT: retried while the head starts Serve --------------------------------------------
def test_a_serve_put_is_retried_with_backoff_while_the_head_answers_5xx():
    client = dashboard((503, "starting"), (500, "controller not ready"), (200, {}))
    client.put_serve({"applications": []})
    assert [m for m, _, _ in client.session.sent] == ["PUT", "PUT", "PUT"]
    assert client.clock.slept == 1.0 + 2.0  # doubling from 1 s
    assert client.session.sent[-1][2]["json"] == {"applications": []}


def test_an_unreachable_head_is_retried_too():
    client = dashboard(requests.ConnectionError("refused"), (200, {}))
    client.put_serve({"applications": []})
    assert len(client.session.sent) == 2


def test_a_serve_put_refused_as_bad_is_not_retried():
    client = dashboard((400, "invalid config"))
    with pytest.raises(DashboardError) as info:
        client.put_serve({"applications": [{}]})
    assert info.value.status == 400 and len(client.session.sent) == 1
    assert client.clock.slept == 0


def test_a_serve_put_gives_up_after_its_retry_time():
    client = dashboard(*[(503, "starting")] * 20)
    with pytest.raises(DashboardError) as info:
        client.put_serve({"applications": []}, retry_seconds=20)
    assert info.value.status == 503
    assert client.clock.slept == 1 + 2 + 4 + 8  # the next wait (10 s) would pass the deadline
    assert len(client.session.sent) == 5

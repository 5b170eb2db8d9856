"""``Idempotency-Key`` (api_server/idempotency.py) around views of a small Flask app, over a
real Store on a fake clock: a repeat gets the first answer, a failed first request frees its
key, and a repeat of a request still being answered waits for it without sleeping. Through
the API's own routes: tests/api_server/test_contract.py, tests/security/test_approval_rules.py."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from flask import Flask, g, jsonify, request

from api_server.idempotency import WAIT_FOR_FIRST, idempotent
from checkpoints.access import Principal
from core.errors import Conflict, Invalid
from store import Store
from tests.fakes import FakeClock


class AnsweringClock(FakeClock):
    """Runs ``on_sleep`` once the n-th wait begins (another request finishing meanwhile)."""

    def __init__(self):
        super().__init__()
        self.sleeps = 0
        self.on_sleep: tuple[int, object] | None = None

    def sleep(self, seconds):
        self.sleeps += 1
        if self.on_sleep and self.sleeps == self.on_sleep[0]:
            self.on_sleep[1]()
        super().sleep(seconds)


@pytest.fixture
def api(tmp_path):
    clock = AnsweringClock()
    store = Store(tmp_path / "state", clock)
    app = Flask(__name__)
    app.testing = True  # errors reach the test as raised
    app.extensions["raydeploy"] = SimpleNamespace(store=store)
    calls: list[dict] = []
    answers = {"status": 201}

    @app.before_request
    def who():
        if request.headers.get("X-Principal"):
            g.principal = Principal(request.headers["X-Principal"], frozenset({"operator"}))

    @app.post("/runs/<name>")
    @idempotent
    def start(name):
        calls.append({"name": name, "body": request.get_json(silent=True)})
        if answers["status"] == "raise":
            raise RuntimeError("the platform did not answer")
        # a Response, as flask-smorest's blp.response makes it
        response = jsonify({"run": len(calls), "name": name})
        response.status_code = answers["status"]
        return response

    return SimpleNamespace(client=app.test_client(), store=store, clock=clock, calls=calls,
                           answers=answers)


def post(api, path="/runs/a", body=None, key="key-1", who=None):
    headers = {"Idempotency-Key": key} if key else {}
    if who:
        headers["X-Principal"] = who
    return api.client.post(path, json=body or {"n": 1}, headers=headers)


def test_requests_without_a_key_each_run(api):
    assert post(api, key=None).status_code == 201
    assert post(api, key=None).get_json()["run"] == 2


def test_a_repeat_gets_the_first_answer_as_a_200_and_runs_nothing(api):
    first = post(api)
    repeat = post(api)
    assert first.status_code == 201 and first.headers.get("Idempotent-Replayed") is None
    assert repeat.status_code == 200 and repeat.headers["Idempotent-Replayed"] == "true"
    assert repeat.get_json() == first.get_json() == {"run": 1, "name": "a"}
    assert len(api.calls) == 1


def test_the_key_is_the_callers_and_the_concrete_paths(api):
    post(api, who="alice")
    assert post(api, who="bob").get_json()["run"] == 2  # another caller: another request
    assert post(api, path="/runs/b", who="alice").get_json()["run"] == 3  # another path
    assert post(api, who="alice").get_json()["run"] == 1  # the same: the first answer
    assert len(api.calls) == 3


def test_the_same_key_with_another_body_is_refused(api):
    post(api, body={"n": 1})
    with pytest.raises(Invalid) as info:
        post(api, body={"n": 2})
    assert info.value.field == "Idempotency-Key" and "another request body" in str(info.value)
    assert len(api.calls) == 1


def test_a_key_longer_than_200_characters_is_refused_before_anything_runs(api):
    assert post(api, key="k" * 200).status_code == 201
    with pytest.raises(Invalid) as info:
        post(api, key="k" * 201)
    assert info.value.field == "Idempotency-Key" and len(api.calls) == 1


def test_a_refused_request_frees_its_key_for_a_retry(api):
    api.answers["status"] = 409
    assert post(api).status_code == 409
    api.answers["status"] = 201
    retry = post(api)
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") is None
    assert len(api.calls) == 2


def test_a_request_that_failed_frees_its_key_and_its_error_goes_on(api):
    api.answers["status"] = "raise"
    with pytest.raises(RuntimeError):
        post(api)
    api.answers["status"] = 201
    assert post(api).status_code == 201 and len(api.calls) == 2


def body_hash(body: dict) -> str:
    """What the first request's body hashes to, as the test client sends it."""
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def test_a_repeat_while_the_first_is_answered_waits_for_its_answer(api):
    scope = ("anonymous", "POST /runs/a", "key-1")
    assert api.store.idempotency.claim(*scope, body_hash({"n": 1})) is None  # the first, going

    def first_answers():
        api.store.idempotency.answer(*scope, 202, '{"run": "first"}')
    api.clock.on_sleep = (3, first_answers)
    repeat = post(api, body={"n": 1})
    assert repeat.status_code == 200 and repeat.get_json() == {"run": "first"}
    assert api.calls == [] and api.clock.slept == pytest.approx(3 * 0.05)


def test_a_repeat_waits_for_the_first_only_so_long(api):
    scope = ("anonymous", "POST /runs/a", "key-1")
    api.store.idempotency.claim(*scope, body_hash({"n": 1}))
    with pytest.raises(Conflict, match="still running"):
        post(api, body={"n": 1})
    assert api.calls == [] and api.clock.slept == pytest.approx(WAIT_FOR_FIRST, abs=0.06)

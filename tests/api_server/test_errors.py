"""Domain errors mapped to HTTP once (api_server/errors.py): the table, the one error shape an
app answers with, and what ``@raises`` puts in the spec. On a small Flask app of its own."""
from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask_smorest import Api, Blueprint

from api_server.errors import TooManyRequests, raises, register, status_for
from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable


class RunGone(NotFound):
    """A kind of NotFound of some module: it answers as its kind does."""


@pytest.mark.parametrize("error,code", [
    (Invalid("x"), 422), (Forbidden("x"), 403), (NotFound("x"), 404), (Conflict("x"), 409),
    (Unavailable("x"), 503), (TooManyRequests("x"), 429), (RunGone("x"), 404),
    (DomainError("x"), 500),
])  # (TooManyRequests is a kind of Unavailable, and yet a 429)
def test_each_kind_of_domain_error_has_its_status(error, code):
    assert status_for(error) == code


# -- an app answering with them --------------------------------------------------------------------
RAISED = {"invalid": Invalid("count must be positive", field="count"),
          "invalid-nofield": Invalid("the body is not a run"),
          "gone": RunGone("run r-1 not found"),
          "busy": TooManyRequests("every event stream is taken"),
          "odd": DomainError("a kind nobody mapped"),
          "crash": RuntimeError("secret path /srv/state/keys in a traceback")}


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("things", __name__)

    @blp.route("/fail/<what>")
    @raises(blp, Invalid, NotFound, TooManyRequests, notfound="no such thing")
    def fail(what):
        raise RAISED[what]

    api.register_blueprint(blp)
    register(app, api)
    app.extensions["test.api"] = api
    return app


def test_an_invalid_field_is_named_in_the_one_error_shape(app):
    response = app.test_client().get("/fail/invalid")
    assert response.status_code == 422
    assert response.get_json() == {"code": 422, "status": "Unprocessable Entity",
                                   "message": "count must be positive",
                                   "errors": {"json": {"count": ["count must be positive"]}}}


def test_an_error_without_a_field_has_no_field_errors(app):
    body = app.test_client().get("/fail/invalid-nofield").get_json()
    assert body["code"] == 422 and "errors" not in body


def test_a_kind_answers_with_its_kinds_status_and_its_message(app):
    response = app.test_client().get("/fail/gone")
    assert response.status_code == 404
    assert response.get_json()["message"] == "run r-1 not found"


def test_too_many_at_once_says_when_to_retry(app):
    response = app.test_client().get("/fail/busy")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(TooManyRequests.retry_after)


def test_an_unmapped_domain_error_is_a_500_and_logged(app, caplog):
    with caplog.at_level(logging.ERROR, logger="api_server.errors"):
        response = app.test_client().get("/fail/odd")
    assert response.status_code == 500 and response.get_json()["message"] == "a kind nobody mapped"
    assert "unmapped domain error: a kind nobody mapped" in caplog.text


def test_an_unexpected_error_is_a_500_that_says_nothing_of_it(app, caplog):
    with caplog.at_level(logging.ERROR, logger="api_server.errors"):
        response = app.test_client().get("/fail/crash")
    assert response.status_code == 500
    assert response.get_json() == {"code": 500, "status": "Internal Server Error",
                                   "message": "internal error (details are in the server log)"}
    assert "/srv/state/keys" in caplog.text  # in the server's log, with its traceback


def test_raises_documents_each_kind_with_its_code_and_the_error_shape(app):
    spec = app.extensions["test.api"].spec.to_dict()
    responses = spec["paths"]["/fail/{what}"]["get"]["responses"]
    assert {"422", "404", "429"} <= set(responses)
    assert responses["404"]["description"] == "no such thing"  # the view's own words
    assert responses["422"]["description"].startswith("invalid input")
    assert all(responses[code]["content"]["application/json"]["schema"] ==
               {"$ref": "#/components/schemas/Error"} for code in ("422", "404", "429"))
    assert "Retry-After" in responses["429"]["headers"]
    assert "headers" not in responses["404"]
